"""Public entry points of the simulation: compose and validate a config, simulate a table."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from omegaconf import DictConfig, OmegaConf

from calo_calib.io.schema import COLUMNS, arrow_schema
from calo_calib.simulation.knobs import validate_knobs
from calo_calib.simulation.material import AccordionDepth, ConfigError, InnerDetectorProfile, UpstreamMaterial

KNOWN_PARTICLES = ("electron", "photon", "photon_unconv", "photon_conv")
KNOWN_SPECTRA = ("log_uniform", "flat_et", "fixed")
CALORIMETER_ABS_ETA_MAX = 2.5  # outer-wheel edge: precision e/gamma needs |eta| < 2.47 [S10]
BATCH_SIZE = 1000


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``conf/simulate.yaml`` with Hydra overrides (e.g. ``["particle=photon_conv"]``) and validate it.

    ``out`` may stay unset (``???``) for in-memory use with :func:`simulate_table`.
    """
    from calo_calib.config import compose, detector_config

    cfg = compose("simulate", overrides)
    validate_config(cfg, nominal=detector_config("nominal"))
    return cfg


def _number(cfg: DictConfig, key: str) -> float:
    value = OmegaConf.select(cfg, key, throw_on_missing=True)
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ConfigError(f"{key} must be finite, got {value!r}")
    return out


def validate_config(cfg: DictConfig, nominal: DictConfig | None = None) -> None:
    """Fail early, naming the field, on any configuration the simulation cannot honour.

    The checks run in a fixed order (particle, sizes, pile-up, gun, detector) so that a config with
    several mistakes always reports the same one first; each group is one helper below. ``nominal``:
    the nominal detector config, against which unknown ``detector.*`` keys are found
    (:func:`~calo_calib.simulation.knobs.validate_knobs`; given where the config is composed).
    """
    _validate_particle(cfg)
    _validate_sizes(cfg)
    _validate_pileup(cfg)
    _validate_gun(cfg)
    _validate_detector(cfg, nominal)


def _is_count(value: object, minimum: int) -> bool:
    """``value`` is an int >= ``minimum``; a bool is refused (``n_clusters=true`` is a typo, not 1)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _validate_particle(cfg: DictConfig) -> None:
    """The particle preset: a known name, the species to generate and the conversion selection."""
    name = OmegaConf.select(cfg, "particle.name")
    if name not in KNOWN_PARTICLES:
        raise ConfigError(f"particle={name!r} is unknown; choose one of {', '.join(KNOWN_PARTICLES)}")
    if str(cfg.particle.generate) not in ("electron", "photon"):
        raise ConfigError(f"particle.generate must be electron or photon, got {cfg.particle.generate!r}")
    if str(cfg.particle.select) not in ("all", "unconverted", "converted"):
        raise ConfigError(f"particle.select must be all, unconverted or converted, got {cfg.particle.select!r}")


def _validate_sizes(cfg: DictConfig) -> None:
    """How much to simulate and how: cluster count, shard size and worker count."""
    n = OmegaConf.select(cfg, "n_clusters")
    if not _is_count(n, 1):
        raise ConfigError(f"n_clusters must be a positive integer, got {n!r}")
    shard = OmegaConf.select(cfg, "shard_size")
    if not _is_count(shard, 1):
        raise ConfigError(f"shard_size must be a positive integer, got {shard!r}")
    workers = OmegaConf.select(cfg, "workers")
    if not _is_count(workers, 0):
        raise ConfigError(f"workers must be an integer >= 0 (0 = one per core), got {workers!r}")


def _validate_pileup(cfg: DictConfig) -> None:
    """The mean pile-up and its per-event spread; the messages quote the value as written in the config."""
    if _number(cfg, "mu") < 0:
        raise ConfigError(f"mu (mean pile-up) must be >= 0, got {cfg.mu}")
    if _number(cfg, "pileup.mu_rel_sigma") < 0:
        raise ConfigError(f"pileup.mu_rel_sigma must be >= 0, got {cfg.pileup.mu_rel_sigma}")
    if _number(cfg, "pileup.mu_reference") < 0:
        raise ConfigError(f"pileup.mu_reference must be >= 0, got {cfg.pileup.mu_reference}")


def _validate_gun(cfg: DictConfig) -> None:
    """The particle gun: energy spectrum and range, |eta| range inside the calorimeter, vertex spread."""
    g = cfg.gun
    if g.spectrum not in KNOWN_SPECTRA:
        raise ConfigError(f"gun.spectrum={g.spectrum!r} is unknown; choose one of {', '.join(KNOWN_SPECTRA)}")
    e_min, e_max = _number(cfg, "gun.e_min"), _number(cfg, "gun.e_max")
    if e_min <= 0:
        raise ConfigError(f"gun.e_min must be > 0 GeV, got {e_min}")
    if g.spectrum != "fixed" and e_max < e_min:  # a fixed spectrum uses e_min only
        raise ConfigError(f"gun.e_max ({e_max}) must be >= gun.e_min ({e_min})")
    lo, hi = _number(cfg, "gun.abs_eta_min"), _number(cfg, "gun.abs_eta_max")
    if lo < 0 or hi > CALORIMETER_ABS_ETA_MAX or lo > hi:
        raise ConfigError(
            f"gun.abs_eta_min/abs_eta_max = [{lo}, {hi}] outside the calorimeter: need 0 <= min <= max <= {CALORIMETER_ABS_ETA_MAX}"
        )
    if _number(cfg, "gun.vertex_sigma_z") < 0:
        raise ConfigError(f"gun.vertex_sigma_z must be >= 0 mm, got {g.vertex_sigma_z}")


def _validate_detector(cfg: DictConfig, nominal: DictConfig | None = None) -> None:
    """The detector: its knobs, the material and depth models (their own checks), noise, sampling, clustering."""
    det = cfg.detector
    validate_knobs(det, nominal)  # unknown detector keys (given the nominal detector) and the data-like variant knobs
    # Building the models runs their validation; the objects themselves are not needed here.
    UpstreamMaterial.from_config(det.material)
    AccordionDepth.from_config(det.accordion)
    InnerDetectorProfile.from_config(det.material)
    for key in ("sigma_elec_barrel", "sigma_elec_endcap", "sigma_pu_eta0"):
        values = list(det.readout[key])
        if len(values) != 4 or any(float(v) < 0 for v in values):
            raise ConfigError(f"detector.readout.{key} must be 4 values >= 0 (PS, L1, L2, L3), got {values}")
    cond = det.readout.pileup.conditions
    if str(cond.source) not in ("measured", "table"):
        raise ConfigError(f"detector.readout.pileup.conditions.source: expected 'measured' or 'table', got {cond.source!r}")
    if not _is_count(OmegaConf.select(det, "readout.pileup.conditions.windows_per_point"), 100):
        raise ConfigError(
            f"detector.readout.pileup.conditions.windows_per_point must be an integer >= 100, got {cond.windows_per_point!r}"
        )
    for key in ("a_barrel_ref", "a_endcap"):
        if _number(cfg, f"detector.sampling.{key}") < 0:
            raise ConfigError(f"detector.sampling.{key} must be >= 0")
    _validate_clustering(cfg)


def _validate_clustering(cfg: DictConfig) -> None:
    """Topo-clustering thresholds: each >= 0 and ordered (a seed must also pass the growth threshold)."""
    for key in (
        "seed_sigma", "grow_sigma", "boundary_sigma", "min_et", "satellite_min_e", "satellite_window_eta",
        "satellite_window_phi", "electron_window_eta", "electron_window_phi", "track_match_deta",
        "track_match_dphi", "track_match_dphi_brem",
    ):  # fmt: skip
        if _number(cfg, f"detector.clustering.{key}") < 0:
            raise ConfigError(f"detector.clustering.{key} must be >= 0")
    c = cfg.detector.clustering
    if not float(c.seed_sigma) >= float(c.grow_sigma) >= float(c.boundary_sigma):
        raise ConfigError("detector.clustering thresholds must satisfy seed_sigma >= grow_sigma >= boundary_sigma")


def simulate_columns(
    cfg: DictConfig, n_clusters: int, seed: int | np.random.SeedSequence, *, noise_truth: bool = False
) -> tuple[dict, int]:
    """Simulate until ``n_clusters`` clusters pass the selection; returns (columns, n_rejected)."""
    from calo_calib.simulation.generator import Simulator

    sim = Simulator(cfg, noise_truth=noise_truth)
    rng = np.random.default_rng(seed)
    # A converted/unconverted selection keeps about half of the photons: generate more per batch.
    batch_size = BATCH_SIZE if str(cfg.particle.select) == "all" else 2 * BATCH_SIZE
    batches, have, rejected = [], 0, 0
    while have < n_clusters:
        out = sim.batch(batch_size, rng)
        if out is None:
            continue
        rejected += int(out.pop("n_rejected")[0])
        batches.append(out)
        have += out["cluster_e"].shape[0]
    return _concat(batches, n_clusters), rejected


def _concat(batches: list[dict], n: int) -> dict:
    """Concatenate batch columns and keep the first ``n`` clusters."""
    out = {}
    offsets = [batches[0]["cell_offsets"]]
    for b in batches[1:]:
        offsets.append(b["cell_offsets"][1:] + offsets[-1][-1])
    offsets = np.concatenate(offsets)[: n + 1]
    for key in batches[0]:
        if key == "cell_offsets":
            continue
        arr = np.concatenate([b[key] for b in batches])
        out[key] = arr[: offsets[-1]] if key.startswith("cell_") else arr[:n]
    out["cell_offsets"] = offsets
    return out


def columns_to_table(cols: dict, metadata: dict[bytes, bytes] | None = None) -> pa.Table:
    """Arrow table in the schema of :mod:`calo_calib.io.schema` from simulated columns."""
    schema = arrow_schema(metadata)
    offsets = pa.array(cols["cell_offsets"], type=pa.int32())
    arrays = []
    for col in COLUMNS:
        if col.name.startswith("cell_"):
            values = pa.array(cols[col.name], type=col.type.value_type)
            arrays.append(pa.ListArray.from_arrays(offsets, values).cast(col.type))
        else:
            arrays.append(pa.array(cols[col.name], type=col.type))
    return pa.Table.from_arrays(arrays, schema=schema)


NOISE_TRUTH_COLUMNS = ("truth_e_pileup_cluster", "truth_e_noise_cluster")
"""Diagnostic truth of :func:`simulate_table` with ``noise_truth=True`` (GeV, float64): pile-up and electronic
noise summed over the cluster's accordion cells. Not part of the data format (a truth leak, never stored)."""


def simulate_table(
    cfg: DictConfig, n_clusters: int, seed: int | np.random.SeedSequence, *, noise_truth: bool = False
) -> pa.Table:
    """Simulate ``n_clusters`` clusters of ``cfg.particle`` as an Arrow table (no metadata).

    Identical ``cfg`` and ``seed`` give identical output. ``noise_truth`` appends the columns of
    :data:`NOISE_TRUTH_COLUMNS` after the schema's (the other columns are unchanged, byte for byte).
    """
    validate_config(cfg)
    if n_clusters <= 0:
        raise ConfigError(f"n_clusters must be > 0, got {n_clusters}")
    cols, _ = simulate_columns(cfg, n_clusters, seed, noise_truth=noise_truth)
    table = columns_to_table(cols)
    if noise_truth:
        for name in NOISE_TRUTH_COLUMNS:
            table = table.append_column(name, pa.array(cols[name], type=pa.float64()))
    return table


def simulate_given(
    cfg: DictConfig,
    e: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    charge: np.ndarray | None,
    seed: int | np.random.SeedSequence,
    *,
    vertex_z: np.ndarray | None = None,
    mu: np.ndarray | None = None,
    progress: bool = False,
) -> tuple[dict, np.ndarray]:
    """Simulate particles of GIVEN kinematics (e.g. the two electrons of a Z decay) instead of the gun.

    Args:
        cfg: a validated simulate config (its ``detector`` is used as is; ``gun`` is ignored except
            ``gun.vertex_sigma_z`` when ``vertex_z`` is None).
        e, eta, phi: (n,) true energy [GeV], signed pseudorapidity from the vertex, azimuth [rad].
        charge: (n,) -1 / +1 for electrons; None draws it at random. Must be None for photons.
        seed: seeds the detector response (and the vertex / <mu> draws when not given).
        vertex_z: (n,) vertex z [mm]; particles of one event share it. None: N(0, gun.vertex_sigma_z).
        mu: (n,) <mu> of each particle's event. None: drawn per particle as the gun does.
        progress: tqdm bar over the batches.

    Returns:
        ``(columns, kept_index)``: the columns of :func:`columns_to_table` (with ``cell_offsets``)
        for the clusters that pass the reconstruction and selection, in input order, and
        ``kept_index`` (kept,) int64: the input position of each returned cluster. Particles
        without a cluster are the ones missing from ``kept_index``.

    Raises:
        ConfigError: on inputs the simulation cannot honour (the argument and value are named).
    """
    from calo_calib.simulation.generator import draw_mu

    validate_config(cfg)
    arrays = _given_arrays(e, eta, phi, charge, vertex_z, mu)
    _check_given(cfg, arrays)
    n = arrays["e"].shape[0]
    # One generator for everything, in this order: vertex, then <mu>, then the detector response.
    # Changing the order would change every simulated sample of a given seed.
    rng = np.random.default_rng(seed)
    if vertex_z is None:
        arrays["vertex_z"] = rng.normal(0.0, float(cfg.gun.vertex_sigma_z), n)
    if mu is None:
        arrays["mu"] = draw_mu(cfg, n, rng)
    batches, kept = _simulate_given_batches(cfg, arrays, rng, progress)
    if not batches:
        raise ConfigError(f"simulate_given: none of the {n} particles gave a selected cluster")
    kept_index = np.concatenate(kept)
    return _concat(batches, kept_index.shape[0]), kept_index


def _given_arrays(
    e: np.ndarray, eta: np.ndarray, phi: np.ndarray, charge: np.ndarray | None,
    vertex_z: np.ndarray | None, mu: np.ndarray | None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """The given per-particle inputs as float64 arrays, keyed by argument name; the None ones are left out."""
    given = {"e": e, "eta": eta, "phi": phi, "charge": charge, "vertex_z": vertex_z, "mu": mu}  # signature order
    return {name: np.asarray(arr, dtype=np.float64) for name, arr in given.items() if arr is not None}


def _check_given(cfg: DictConfig, arrays: dict[str, np.ndarray]) -> None:
    """Refuse inputs of :func:`simulate_given` the simulation cannot honour, naming the argument and value.

    Shapes and finiteness come first (over the arguments in signature order), so that the range
    checks after them can assume clean (n,) arrays.
    """
    e = arrays["e"]
    n = e.shape[0]
    for name, arr in arrays.items():
        if arr.shape != (n,):
            raise ConfigError(f"simulate_given: {name} has shape {arr.shape}, expected ({n},) like e")
        if not np.all(np.isfinite(arr)):
            raise ConfigError(f"simulate_given: {name} has non-finite values (first at index {int(np.flatnonzero(~np.isfinite(arr))[0])})")
    if n == 0:
        raise ConfigError("simulate_given: no particles given (e is empty)")
    if np.any(e <= 0):
        raise ConfigError(f"simulate_given: e must be > 0 GeV, got {e[e <= 0][0]}")
    if np.any(np.abs(arrays["eta"]) > CALORIMETER_ABS_ETA_MAX):
        raise ConfigError(f"simulate_given: |eta| must be <= {CALORIMETER_ABS_ETA_MAX}, got {np.abs(arrays['eta']).max()}")
    if "charge" in arrays:
        if str(cfg.particle.generate) != "electron":
            raise ConfigError(f"simulate_given: charge given but particle.generate={cfg.particle.generate} (photons have none)")
        if not np.all(np.isin(arrays["charge"], (-1.0, 1.0))):
            raise ConfigError("simulate_given: charge must be -1 or +1")
    if "mu" in arrays and np.any(arrays["mu"] < 0):
        raise ConfigError("simulate_given: mu must be >= 0")


def _simulate_given_batches(
    cfg: DictConfig, arrays: dict[str, np.ndarray], rng: np.random.Generator, progress: bool
) -> tuple[list[dict], list[np.ndarray]]:
    """Run the detector on the given particles in batches of :data:`BATCH_SIZE`, in input order.

    Returns the batches' columns and, per batch, the input position of each kept cluster (a batch
    where nothing passes the selection contributes nothing). ``arrays`` must hold vertex_z and mu.
    """
    from tqdm import tqdm

    from calo_calib.simulation.generator import GivenParticles, Simulator

    n = arrays["e"].shape[0]
    charge = arrays.get("charge")
    sim = Simulator(cfg)
    batches, kept = [], []
    for start in tqdm(range(0, n, BATCH_SIZE), desc="simulate given", unit="batch", disable=not progress):
        sl = slice(start, min(start + BATCH_SIZE, n))
        given = GivenParticles(
            arrays["e"][sl], arrays["eta"][sl], arrays["phi"][sl], arrays["vertex_z"][sl], arrays["mu"][sl],
            charge[sl] if charge is not None else None,
        )  # fmt: skip
        out = sim.batch(sl.stop - sl.start, rng, given=given)
        if out is None:
            continue
        out.pop("n_rejected")
        kept.append(out.pop("input_index").astype(np.int64) + start)
        batches.append(out)
    return batches, kept
