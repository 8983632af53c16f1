"""Sample building: the validation's dedicated samples, their worker jobs and the worker summaries.

:func:`build_samples` lists every :class:`Sample` (the report's own and those of
:mod:`~calo_calib.validation.sections`); :func:`generate` splits them into jobs of at most
:data:`CHUNK` clusters (:func:`chunks`, one seed per job from ``SeedSequence([seed, sample, part])``),
simulates them in spawned worker processes (:func:`run_job`) and merges the parts
(:func:`merge`). A worker returns :func:`summarise`: the scalar columns, the cluster noise and the
cells of the first :data:`CELLS_KEEP` clusters (the list columns are dropped to keep the transfer small).
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context

import numpy as np
from omegaconf import DictConfig, OmegaConf

CHUNK = 3000  # clusters per worker job at most (parallelism and memory)
CELLS_KEEP = 200  # clusters per job whose cells are returned for the noise check


@dataclass
class Sample:
    """One dedicated sample: simulation overrides, size and what it is for."""

    key: str
    group: str
    overrides: list[str]
    n: int
    meta: dict = field(default_factory=dict)


def fixed_overrides(particle: str, e: float, eta: float, half: float, mu: float) -> list[str]:
    """Simulation overrides of a fixed-energy gun: ``e`` [GeV], |η| in ``eta`` ± ``half``, fixed ⟨μ⟩ = ``mu``.

    ``gun.e_max`` only has to exceed ``e`` (a fixed spectrum ignores it; the config validates e_min < e_max).
    """
    return [
        f"particle={particle}",
        "gun.spectrum=fixed",
        f"gun.e_min={e:g}",
        f"gun.e_max={max(2 * e, 500.0):g}",
        f"gun.abs_eta_min={max(eta - half, 0.0):g}",
        f"gun.abs_eta_max={min(eta + half, 2.47):g}",
        f"mu={mu:g}",
        "pileup.mu_rel_sigma=0",
    ]


def build_samples(cfg: DictConfig) -> list[Sample]:
    """All samples of the validation, with sizes from ``cfg`` (``cfg.quick`` selects the tiny ones)."""
    s = cfg.quick_sizes if cfg.quick else cfg
    npp, n_scan, n_etamod, n_default = int(s.n_per_point), int(s.n_scan), int(s.n_etamod), int(s.n_default)
    energies = [float(e) for e in s.energies]
    etas = [float(a) for a in s.eta_points]
    half = float(cfg.eta_half_width)
    extra = list(cfg.sim_overrides or [])
    out: list[Sample] = []
    for particle in cfg.resolution_particles:
        for mu in cfg.mus:
            for eta in etas:
                for e in energies:
                    out.append(
                        Sample(
                            f"res/{particle}/mu{mu:g}/eta{eta:g}/E{e:g}",
                            "resolution",
                            fixed_overrides(particle, e, eta, half, float(mu)) + extra,
                            npp,
                            {"particle": particle, "mu": float(mu), "eta": eta, "e": e},
                        )
                    )
    for particle in ("electron", "photon"):
        out.append(
            Sample(
                f"scan/{particle}",
                "scan",
                [
                    f"particle={particle}",
                    "gun.spectrum=log_uniform",
                    "gun.e_min=5",
                    "gun.e_max=500",
                    "gun.abs_eta_min=0",
                    "gun.abs_eta_max=2.47",
                    "mu=0",
                    "pileup.mu_rel_sigma=0",
                ]
                + extra,
                n_scan,
                {"particle": particle},
            )
        )
    out.append(
        Sample(
            "etamod/electron",
            "etamod",
            fixed_overrides("electron", 50.0, 0.4, 0.4, 0.0) + ["gun.vertex_sigma_z=0"] + extra,
            n_etamod,
            {"particle": "electron", "e": 50.0},
        )
    )
    for eta in [float(a) for a in s.corr_photon_eta]:
        out.append(
            Sample(
                f"corr/photon/eta{eta:g}",
                "corr",
                fixed_overrides("photon", 50.0, eta, half, 0.0) + extra,
                npp,
                {"particle": "photon", "eta": eta, "e": 50.0, "mu": 0.0},
            )
        )
    for particle in ("electron", "photon_unconv", "photon_conv"):
        out.append(
            Sample(
                f"default/{particle}", "default", [f"particle={particle}"] + extra, n_default, {"particle": particle}
            )
        )
    from calo_calib.validation.sections import extra_samples  # sections in their own modules

    return out + extra_samples(cfg)


def chunks(samples: list[Sample], seed: int) -> list[dict]:
    """Split samples into worker jobs of at most CHUNK clusters, each with its own seed."""
    jobs = []
    for si, smp in enumerate(samples):
        n_parts = max(1, math.ceil(smp.n / CHUNK))
        sizes = [smp.n // n_parts + (1 if k < smp.n % n_parts else 0) for k in range(n_parts)]
        for k, n in enumerate(sizes):
            if n <= 0:
                continue
            job_seed = int(np.random.SeedSequence([int(seed), si, k]).generate_state(1)[0])
            cost = n * (1.0 + smp.meta.get("e", 50.0) / 60.0)
            jobs.append(
                {
                    "sample": si,
                    "part": k,
                    "key": smp.key,
                    "overrides": smp.overrides,
                    "n": n,
                    "seed": job_seed,
                    "cost": cost,
                    "summaries": list(smp.meta.get("summaries", [])),
                }
            )
    jobs.sort(key=lambda j: -j["cost"])  # longest first for load balancing
    return jobs


def summarise(table) -> dict:
    """Worker summary of a cluster table: its scalar columns as (N,) arrays, ``cluster_noise`` (N,) =
    √Σσ²_cell [GeV], and ``_cells``: the flat cell columns of the first :data:`CELLS_KEEP` clusters."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out: dict = {}
    for name in table.schema.names:
        col = table[name]
        if pa.types.is_list(col.type):
            continue
        out[name] = col.to_numpy(zero_copy_only=False)
    n = table.num_rows
    noise = table["cell_noise"].combine_chunks()
    parent = pc.list_parent_indices(noise).to_numpy()
    sig = pc.list_flatten(noise).to_numpy().astype(np.float64)
    out["cluster_noise"] = np.sqrt(np.bincount(parent, weights=sig**2, minlength=n))
    head = table.slice(0, min(CELLS_KEEP, n))
    cells = {}
    for name in ("cell_e", "cell_eta", "cell_layer", "cell_noise"):
        cells[name] = pc.list_flatten(head[name].combine_chunks()).to_numpy(zero_copy_only=False)
    out["_cells"] = cells
    return out


def run_job(job: dict) -> dict:
    """Worker: compose the simulation config, simulate, summarise (runs in a spawned process)."""
    from calo_calib.simulation import compose_config, simulate_table

    cfg = compose_config(list(job["overrides"]))
    t0 = time.perf_counter()
    table = simulate_table(cfg, int(job["n"]), int(job["seed"]))
    dt = time.perf_counter() - t0
    summary = summarise(table)
    if job.get("summaries"):
        from calo_calib.validation.sections import extra_summary

        summary.update(extra_summary(job["summaries"], table))
    sim_cfg = OmegaConf.to_container(cfg, resolve=True)
    sim_cfg.pop("hydra", None)
    return {
        "sample": job["sample"],
        "part": job["part"],
        "seconds": dt,
        "n": table.num_rows,
        "data": summary,
        "cfg": sim_cfg,
    }


def merge(parts: list[dict]) -> dict:
    """Concatenate the summaries of one sample's jobs in part order (so the clusters keep their seed order)."""
    parts = sorted(parts, key=lambda p: p["part"])
    data = {}
    for k in parts[0]["data"]:
        if k == "_cells":
            data[k] = {c: np.concatenate([p["data"][k][c] for p in parts]) for c in parts[0]["data"][k]}
        else:
            data[k] = np.concatenate([p["data"][k] for p in parts])
    return data


def collect(samples: list[Sample], parts: dict[int, list]) -> tuple[dict[str, dict], dict[str, dict]]:
    """({key: data}, {key: simulation config}) of the finished jobs ``parts`` (by sample index), in the
    order of ``samples``: the workers finish in any order, the report's rows must not follow it."""
    order = sorted(parts)
    return {samples[si].key: merge(parts[si]) for si in order}, {samples[si].key: parts[si][0]["cfg"] for si in order}


def generate(samples: list[Sample], seed: int, workers: int) -> tuple[dict[str, dict], dict[str, dict], float]:
    """Run all samples; returns ({key: data}, {key: simulation config}, total simulation seconds)."""
    jobs = chunks(samples, seed)
    n_total = sum(j["n"] for j in jobs)
    workers = max(1, int(workers) if workers else (os.cpu_count() or 1))
    print(f"[validate] {len(samples)} samples, {len(jobs)} jobs, {n_total} clusters on {workers} worker(s)", flush=True)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    results: dict[int, list] = {}
    t0 = time.perf_counter()
    done_n, sim_seconds = 0, 0.0
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_job, j): j for j in jobs}
        for i, fut in enumerate(as_completed(futures), 1):
            j = futures[fut]
            res = fut.result()  # a failing simulation fails the validation loudly
            results.setdefault(res["sample"], []).append(res)
            done_n += res["n"]
            sim_seconds += res["seconds"]
            el = time.perf_counter() - t0
            print(
                f"[validate] {i:3d}/{len(jobs)} {j['key']:<34s} {res['n']:6d} clusters in {res['seconds']:6.1f} s "
                f"({res['n'] / max(res['seconds'], 1e-9):6.0f}/s)  total {done_n}/{n_total}, {el:6.1f} s elapsed",
                flush=True,
            )
    data, cfgs = collect(samples, results)
    return data, cfgs, sim_seconds


def generate_inline(samples: list[Sample], seed: int) -> tuple[dict[str, dict], dict[str, dict]]:
    """Serial, in-process counterpart of :func:`generate` (tests, debugging).

    Same jobs, seeds and summaries; returns ({key: data}, {key: simulation config}).
    """
    parts: dict[int, list] = {}
    for job in chunks(samples, seed):
        res = run_job(job)
        parts.setdefault(res["sample"], []).append(res)
    return collect(samples, parts)
