"""Simulate Z -> ee events through the fast simulation and write them as a sample directory.

Layout of a sample directory::

    <dir>/clusters/shard_00000.parquet ...   clusters in the schema of calo_calib.io.schema: any
                                             trained calibration reads them (load_calibration(path).apply)
    <dir>/events.parquet                     one row per reconstructed event (both electrons have a cluster)
    <dir>/lost_electrons.parquet             the electrons without a cluster (which electron of which event)
    <dir>/sample.json                        counts, configuration, seeds (the provenance)

Cluster rows come in event order, electron (charge -1) then positron, so a cluster's ``row_id``
(its row in the concatenation of the sorted shards, as :class:`calo_calib.data.loader.ClusterDataset`
numbers them) is what ``events.parquet`` stores in ``row_id_1`` / ``row_id_2``.

Both electrons of an event share the vertex z (N(0, gun.vertex_sigma_z) of the simulate config) and
the event's <mu> (drawn as the gun draws it). Shard k is generated from
``SeedSequence(seed).spawn(n_shards)[k]``: the sample is reproducible shard by shard.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

import calo_calib
from calo_calib.io.atomic import write_json_atomic
from calo_calib.io.parquet import list_shards, write_table_atomic
from calo_calib.zee.generator import ZeeConfig, generate

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
SHARD_PATTERN = "shard_{:05d}.parquet"
CLUSTER_COLUMNS = ("cluster_e", "cluster_eta", "cluster_phi", "truth_e", "truth_eta", "truth_phi", "is_crack")


def compose_sim_config(detector: str, overrides: Sequence[str] = ()) -> DictConfig:
    """The simulate config of electrons on detector variant ``detector`` (``conf/detector/<name>.yaml``)."""
    from calo_calib.simulation import compose_config

    return compose_config(["particle=electron", f"detector={detector}", *overrides])


def _provenance(sim_cfg: DictConfig, gen: ZeeConfig, n_events: int, shard_events: int, seed: int) -> dict:
    container = OmegaConf.to_container(sim_cfg, resolve=True)
    for key in ("hydra", "out", "workers", "progress", "overwrite", "resume", "n_clusters", "shard_size", "seed"):
        container.pop(key, None)
    return {
        "calo_calib_version": calo_calib.__version__,
        "n_events": int(n_events),
        "shard_events": int(shard_events),
        "seed": int(seed),
        "generator": asdict(gen),
        "simulation": container,
    }


def simulate_sample(
    sim_cfg: DictConfig,
    gen: ZeeConfig,
    n_events: int,
    seed: int,
    out: PathLike,
    *,
    shard_events: int = 5000,
    progress: bool = True,
    reuse: bool = True,
) -> Path:
    """Generate ``n_events`` accepted Z -> ee events, simulate both electrons, write the sample to ``out``.

    ``reuse=True`` keeps an existing sample whose ``sample.json`` records the same provenance
    (configuration, generator, counts, seed); anything else in ``out`` is replaced.
    Returns ``out``.
    """
    # Long (~100 lines) on purpose: the reuse check, the shard loop (generator, both electrons, atomic
    # shard writes) and the provenance record share the sample's state and its one random stream.
    from calo_calib.simulation.api import columns_to_table, simulate_given, validate_config
    from calo_calib.simulation.generator import draw_mu

    validate_config(sim_cfg)
    if str(sim_cfg.particle.generate) != "electron":
        raise ValueError(f"Z -> ee needs particle=electron in the simulate config, got {sim_cfg.particle.name}")
    if n_events <= 0 or shard_events <= 0:
        raise ValueError(f"n_events and shard_events must be > 0, got {n_events}, {shard_events}")
    out = Path(out)
    provenance = _provenance(sim_cfg, gen, n_events, shard_events, seed)
    meta_path = out / "sample.json"
    if reuse and meta_path.exists():
        old = json.loads(meta_path.read_text())
        if old.get("provenance") == json.loads(json.dumps(provenance)):
            log.info("reusing the Z -> ee sample in %s", out)
            return out
    clusters_dir = out / "clusters"
    clusters_dir.mkdir(parents=True, exist_ok=True)
    for stale in list(clusters_dir.glob("*.parquet")) + [
        out / "events.parquet",
        out / "lost_electrons.parquet",
        meta_path,
    ]:
        stale.unlink(missing_ok=True)

    n_shards = -(-n_events // shard_events)
    seeds = np.random.SeedSequence(seed).spawn(n_shards)
    events, lost, row_offset, tried_total = [], [], 0, 0
    for k in tqdm(range(n_shards), desc=f"Z->ee on {sim_cfg.detector.name}", unit="shard", disable=not progress):
        n_k = min(shard_events, n_events - k * shard_events)
        first_event = k * shard_events
        gen_seed, det_seed = seeds[k].spawn(2)
        rng = np.random.default_rng(gen_seed)
        ev, tried = generate(n_k, rng, gen)
        tried_total += tried
        vertex_z = rng.normal(0.0, float(sim_cfg.gun.vertex_sigma_z), n_k)
        mu = draw_mu(sim_cfg, n_k, rng)
        # electron-major flattening: input index 2 i + j is electron j of event i
        cols, kept = simulate_given(
            sim_cfg, ev.e.ravel(), ev.eta.ravel(), ev.phi.ravel(), ev.charge.ravel(), det_seed,
            vertex_z=np.repeat(vertex_z, 2), mu=np.repeat(mu, 2),
        )  # fmt: skip
        has = np.zeros(2 * n_k, bool)
        has[kept] = True
        has = has.reshape(n_k, 2)
        complete = has.all(axis=1)
        rows = np.flatnonzero(complete[kept // 2])  # clusters of complete events, in input order
        table = columns_to_table(cols).take(pa.array(rows))
        write_table_atomic(
            table, clusters_dir / SHARD_PATTERN.format(k), {**provenance, "shard": k, "n_clusters": int(rows.size)}
        )

        idx = np.flatnonzero(complete)
        n_ok = idx.size
        row_ids = row_offset + np.arange(2 * n_ok, dtype=np.int64).reshape(n_ok, 2)
        row_offset += 2 * n_ok
        events.append({
            "event_id": (first_event + idx).astype(np.int64),
            "row_id_1": row_ids[:, 0],
            "row_id_2": row_ids[:, 1],
            "charge_1": ev.charge[idx, 0].astype(np.int8),
            "charge_2": ev.charge[idx, 1].astype(np.int8),
            "truth_m_ee": ev.m[idx],
            "truth_z_pt": ev.pt[idx],
            "truth_z_y": ev.y[idx],
            "truth_cos_theta_star": ev.cos_theta_star[idx],
            "truth_vertex_z": vertex_z[idx],
            "mu": mu[idx],
        })  # fmt: skip
        ev_lost, el_lost = np.nonzero(~has)
        lost.append({
            "event_id": (first_event + ev_lost).astype(np.int64),
            "electron": el_lost.astype(np.int8),  # 0 = the electron (charge -1), 1 = the positron
            "truth_e": ev.e[ev_lost, el_lost],
            "truth_eta": ev.eta[ev_lost, el_lost],
            "truth_phi": ev.phi[ev_lost, el_lost],
        })  # fmt: skip

    def table_of(parts: list[dict]) -> pa.Table:
        return pa.table({key: np.concatenate([p[key] for p in parts]) for key in parts[0]})

    events_t, lost_t = table_of(events), table_of(lost)
    write_table_atomic(events_t, out / "events.parquet", provenance)
    write_table_atomic(lost_t, out / "lost_electrons.parquet", provenance)
    summary = {
        "detector": str(sim_cfg.detector.name),
        "n_events_generated": int(n_events),
        "n_decays_tried": int(tried_total),
        "acceptance": n_events / tried_total,
        "n_events_reconstructed": int(events_t.num_rows),
        "n_electrons_lost": int(lost_t.num_rows),
        "n_clusters": int(row_offset),
        "provenance": provenance,
    }
    write_json_atomic(meta_path, summary)
    log.info(
        "Z -> ee on %s: %d events in acceptance (of %d decays), %d reconstructed, %d electrons without a cluster",
        summary["detector"], n_events, tried_total, events_t.num_rows, lost_t.num_rows,
    )  # fmt: skip
    return out


@dataclass
class ZeeSample:
    """A sample read back: ``events`` (per-event numpy columns, see the module doc) and ``clusters``
    (per-cluster numpy columns of :data:`CLUSTER_COLUMNS`, index = row_id)."""

    path: Path
    events: dict[str, np.ndarray]
    clusters: dict[str, np.ndarray]
    summary: dict

    @property
    def clusters_dir(self) -> Path:
        return self.path / "clusters"

    @property
    def n_events(self) -> int:
        return int(self.events["event_id"].shape[0])


def load_sample(path: PathLike) -> ZeeSample:
    """Read a sample directory written by :func:`simulate_sample` (checks that the row ids fit)."""
    path = Path(path)
    meta = path / "sample.json"
    if not meta.exists():
        raise FileNotFoundError(f"{path} is not a Z -> ee sample: {meta} is missing")
    events = pq.read_table(path / "events.parquet")
    events = {c: events.column(c).to_numpy() for c in events.column_names}
    parts = [pq.read_table(p, columns=list(CLUSTER_COLUMNS)) for p in list_shards(path / "clusters")]
    table = pa.concat_tables(parts)
    clusters = {c: table.column(c).to_numpy() for c in CLUSTER_COLUMNS}
    n = table.num_rows
    for key in ("row_id_1", "row_id_2"):
        if events[key].size and (events[key].min() < 0 or events[key].max() >= n):
            raise ValueError(f"{path / 'events.parquet'}: {key} outside the {n} cluster rows of {path / 'clusters'}")
    return ZeeSample(path, events, clusters, json.loads(meta.read_text()))
