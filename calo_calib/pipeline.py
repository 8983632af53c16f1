"""One calibration run, start to finish: data -> training -> test predictions -> σ_rel report.

``train_and_evaluate(cfg, run_dir)`` is what ``python -m calo_calib.run`` calls (and what tests and
sweeps call). Everything a physicist needs is written to the run directory:

- ``config.yaml``: the resolved configuration (``resume`` reads it back);
- ``checkpoints/{last,best}.pt`` (networks) or ``bdt/`` (XGBoost), ``norm.json``, ``history.json``;
- ``predictions.parquet``: one row per test cluster with truth, raw, oracle and model energies
  (and the BDT's, when a BDT run on the same test data is found);
- ``metrics.json``: inclusive and binned σ_rel and median response with bootstrap errors;
- ``summary.md``: the σ_rel tables in % and the ratio to the BDT;
- ``plots/*.png``;
- with ``loss=gaussian_nll`` (per-cluster uncertainty): a ``sigma`` column in the predictions,
  ``uncertainty.json`` / ``uncertainty.md`` (pulls and coverage per (E, |η|) bin) and
  ``plots/{pulls,coverage_vs_e,sigma_pred_vs_e}.png`` (:mod:`calo_calib.evaluation.uncertainty`);
- with ``data.unlabelled_test=<dir>`` (a labelled data-like test set, labels used only here):
  ``predictions_data_like.parquet`` and ``metrics["data_like"]`` (σ_rel, response shift).

``adversary=grl`` with ``data.unlabelled=<dir>`` trains with a domain discriminator on unlabelled
data-like clusters (:mod:`calo_calib.training.domain_adaptation`).
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from calo_calib.calibration import (
    Calibration,
    build_run_network,
    cell_and_cluster_features,
    make_dataset,
    run_calibration_class,
)
from calo_calib.evaluation import predictions as P
from calo_calib.evaluation import uncertainty as U
from calo_calib.evaluation.domain_shift import domain_shift_markdown
from calo_calib.io.atomic import write_text_atomic
from calo_calib.provenance import git_commit
from calo_calib.run_status import unfinished_reason
from calo_calib.tracking import Tracker, open_tracker
from calo_calib.training.distributed import DistEnv

log = logging.getLogger(__name__)

TRAINABLE_PARTICLES = ("electron", "photon_unconv", "photon_conv")
SPLITS = ("train", "val", "test")


class RunError(ValueError):
    """A run cannot start: bad configuration or data (the message names what to fix)."""


# --- data --------------------------------------------------------------------------------------


def resolve_splits(cfg: DictConfig) -> dict[str, list[Path]]:
    """Dataset directories (or files) per split: explicit ``data.<split>`` or the default dataset.

    The default dataset (``data.root/<particle>/<split>``) is generated on first use.
    """
    particle = str(cfg.particle.name)
    explicit = {s: cfg.data.get(s) for s in SPLITS}
    out: dict[str, list[Path]] = {}
    missing_default = [s for s, v in explicit.items() if v is None]
    if missing_default:
        from calo_calib.simulation.default_data import ensure_default_data, split_dir

        root = Path(str(cfg.data.root))
        if not all((split_dir(root, particle, s) / "dataset.json").exists() for s in missing_default):
            log.info("default %s data not found in %s: generating it (once)", particle, root)
            sizes = [f"splits.{k}={int(v)}" for k, v in (cfg.data.get("make_splits") or {}).items()]
            ensure_default_data(particle, root=root, overrides=[f"progress={str(bool(cfg.progress)).lower()}", *sizes])
        for s in missing_default:
            out[s] = [split_dir(root, particle, s)]
    for s, v in explicit.items():
        if v is None:
            continue
        items = [v] if isinstance(v, str) else list(v)
        paths = [Path(str(p)) for p in items]
        for p in paths:
            if not p.exists():
                raise RunError(f"data.{s}: {p} does not exist")
        out[s] = paths
    return out


# --- resume ------------------------------------------------------------------------------------


# What must match for a run directory's checkpoint to be continued automatically.
_IDENTITY_KEYS = ("model", "loss", "particle", "data", "trainer", "adversary", "seed")


def resumed_config(cfg: DictConfig) -> DictConfig:
    """For ``resume=<run_dir>``: the run's saved config (so it continues exactly), marked as resumed.

    Only ``trainer.epochs`` may be raised on the command line (to extend a finished run), and
    ``resume_allow_data_change=true`` continues although the training data changed (see
    :func:`calo_calib.pipeline.data_fingerprint_check`). Called inside the Hydra app (reads its overrides).

    Raises:
        RunError: ``cfg.resume`` is not a run directory.
    """
    run_dir = Path(str(cfg.resume))
    saved_path = run_dir / "config.yaml"
    if not saved_path.exists():
        raise RunError(f"resume={run_dir}: not a run directory ({saved_path} is missing)")
    saved = OmegaConf.load(saved_path)
    saved.resume = str(run_dir)
    overridden = {o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task}
    if "trainer.epochs" in overridden:
        saved.trainer.epochs = cfg.trainer.epochs
    saved.resume_allow_data_change = bool(cfg.get("resume_allow_data_change", False))
    ignored = sorted(overridden - {"resume", "trainer.epochs", "hydra.run.dir", "resume_allow_data_change"})
    if ignored:
        log.warning("resume: the saved config of %s is used; ignoring overrides of %s", run_dir, ", ".join(ignored))
    return saved


def continues_in_place(cfg: DictConfig, run_dir: Path) -> bool:
    """True if ``run_dir`` already holds a started run of this very configuration, which then resumes.

    This is how a SLURM job requeued after preemption or timeout (same job directory, same
    overrides) and a restarted torchrun worker continue from the last checkpoint. A directory
    holding a *different* configuration is an error (:class:`RunError`), never overwritten.
    """
    saved_path = run_dir / "config.yaml"
    started = (run_dir / "checkpoints" / "last.pt").exists() or (run_dir / "bdt" / "bdt.json").exists()
    if not (saved_path.exists() and started):
        return False
    saved = OmegaConf.to_container(OmegaConf.load(saved_path), resolve=True)
    current = OmegaConf.to_container(cfg, resolve=True)
    saved.setdefault("adversary", {"name": "none"})  # runs saved before the adversary option trained without one
    for key, default in (("out_of_range", "error"), ("allow_particle_mismatch", False)):  # saved before these existed
        saved.get("data", {}).setdefault(key, default)
    differ = [k for k in _IDENTITY_KEYS if saved.get(k) != current.get(k)]
    if differ:
        raise RunError(
            f"{run_dir} already holds a run with a different {', '.join(differ)}; "
            "choose another directory (hydra.run.dir=...)"
        )
    log.info("%s already holds a checkpoint of this configuration: resuming it (requeued or restarted job)", run_dir)
    return True


# --- set-up ------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (weights init, dropout); the data order has its own (seed, epoch) RNG."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


NUMERIC_KEYS: dict[str, type] = {
    "seed": int, "data.batch_size": int, "data.eval_batch_size": int, "data.buffer_clusters": int,
    "data.norm_max_clusters": int, "data.max_train_clusters": int, "data.min_cluster_et": float,
    "data.max_train_target": float, "data.pad_multiple": int, "loss.delta": float,
    "evaluation.n_boot": int, "evaluation.min_count": int,
}  # fmt: skip
"""Numeric run options checked at start (null allowed where the config allows it): ``key=abc`` is one error line."""


def _check_numbers(cfg: DictConfig) -> None:
    for key, kind in NUMERIC_KEYS.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is None:
            continue
        ok = isinstance(value, int) and not isinstance(value, bool) if kind is int else (
            isinstance(value, (int, float)) and not isinstance(value, bool))  # fmt: skip
        if not ok:
            raise RunError(f"{key}={value!r}: expected {'an integer' if kind is int else 'a number'}")


def check_config(cfg: DictConfig) -> None:
    """Fail at start, naming the field, on a configuration the run cannot honour."""
    _check_numbers(cfg)
    particle = str(cfg.particle.name)
    if particle not in TRAINABLE_PARTICLES:
        raise RunError(
            f"particle={particle}: calibrations are trained per reconstructed type; "
            f"choose one of {', '.join(TRAINABLE_PARTICLES)}"
        )
    try:
        kind = run_calibration_class(cfg)
    except ValueError as err:
        raise RunError(str(err)) from None
    from calo_calib.training.domain_adaptation import ADVERSARIES
    from calo_calib.training.losses import LOSSES

    if cfg.loss.name not in LOSSES:
        raise RunError(f"loss.name={cfg.loss.name!r}: expected one of {', '.join(LOSSES)}")
    if cfg.loss.name in ("huber", "pull_huber") and not (cfg.loss.delta and float(cfg.loss.delta) > 0):
        raise RunError(f"loss.delta must be > 0 for the Huber loss, got {cfg.loss.delta}")
    adversary = adversary_name(cfg)
    if adversary not in ADVERSARIES:
        raise RunError(f"adversary.name={adversary!r}: expected one of {', '.join(ADVERSARIES)}")
    error = kind.config_error(cfg, adversary)  # the BDT: no pull or σ loss, no adversary
    if error:
        raise RunError(error)
    if adversary != "none":
        if not cfg.data.get("unlabelled"):
            raise RunError(f"adversary={adversary} needs unlabelled data-like clusters: set data.unlabelled=<dataset dir>")
    for key in ("unlabelled", "unlabelled_test"):
        value = cfg.data.get(key)
        for path in [] if not value else ([value] if isinstance(value, str) else list(value)):
            if not Path(str(path)).exists():
                raise RunError(f"data.{key}: {path} does not exist")
    if int(cfg.data.batch_size) <= 0:
        raise RunError(f"data.batch_size must be > 0, got {cfg.data.batch_size}")
    cell_and_cluster_features(cfg)  # unknown feature names raise here
    if kind.is_network:
        trainer_config(cfg)
    for key, choices in (("nonfinite", ("error", "drop")), ("out_of_range", ("error", "drop", "allow"))):
        value = cfg.data.get(key, "error")
        if str(value) not in choices:
            raise RunError(f"data.{key}={value!r}: expected one of {', '.join(choices)}")


def check_data(cfg: DictConfig, splits: dict[str, list[Path]]) -> None:
    """Before any training: the data's particle type, and non-empty validation and test splits.

    Every split (and ``data.unlabelled``/``unlabelled_test``) must hold the run's particle type
    (``particle`` column and conversion types, :func:`calo_calib.data.checks.check_particle`) unless
    ``data.allow_particle_mismatch=true`` (then logged loudly). A validation or test split with no
    cluster left after the selection is an error naming the split, its paths and the selection
    counts (an empty validation split gave a validation loss of 0 and a silent early stop; an
    empty test split crashed after the training).

    Raises:
        RunError: naming the split, the file or the key to fix.
    """
    from calo_calib.data.checks import DataError, check_particle
    from calo_calib.io.dataset_stream import resolve_parquet_files

    particle = str(cfg.particle.name)
    allow = bool(cfg.data.get("allow_particle_mismatch", False))
    named = {f"data.{s}": v for s, v in splits.items()}
    for key in ("unlabelled", "unlabelled_test"):
        if cfg.data.get(key):
            named[f"data.{key}"] = _paths(cfg.data.get(key))
    try:
        for what, paths in named.items():
            files = [f for p in paths for f in resolve_parquet_files(p)]
            for problem in check_particle(files, particle, what=what, override="data.allow_particle_mismatch=true", allow=allow):
                log.warning("PARTICLE MISMATCH (data.allow_particle_mismatch=true): %s", problem)
        for split, training in (("val", True), ("test", False)):
            dataset = make_dataset(cfg, splits[split], training=training)
            if len(dataset) == 0:
                raise RunError(
                    f"{split} split is empty after the selection: no clusters left in "
                    f"{', '.join(map(str, splits[split]))} (data.{split}); selection counts {dataset.counts}"
                )
    except DataError as err:
        raise RunError(str(err)) from None


def data_fingerprint_check(cfg: DictConfig, saved: dict[str, Any] | None, current: dict[str, Any], run_dir: Path) -> None:
    """On ``resume``: the training/validation data must be those of the checkpoint.

    ``saved`` is the fingerprint stored in the checkpoint (None for checkpoints made before it was
    recorded: a warning). A mismatch is a :class:`RunError` naming the files that changed, unless
    ``resume_allow_data_change=true`` (then a loud warning and the training continues on the new data).
    """
    if saved is None:
        log.warning("resume: the checkpoint of %s records no data fingerprint (made before it existed): "
                    "the training data cannot be checked", run_dir)  # fmt: skip
        return
    if saved.get("digest") == current.get("digest"):
        return
    old = {f[0]: f for f in saved.get("files", [])}
    new = {f[0]: f for f in current.get("files", [])}
    changes = [f"{n}: removed" for n in sorted(set(old) - set(new))] + [f"{n}: new" for n in sorted(set(new) - set(old))]
    changes += [f"{n}: changed (size, rows or provenance)" for n in sorted(set(old) & set(new)) if old[n] != new[n]]
    what = "; ".join(changes[:5]) + (f"; ... ({len(changes)} in all)" if len(changes) > 5 else "")
    if bool(cfg.get("resume_allow_data_change", False)):
        log.warning("RESUME ON CHANGED DATA (resume_allow_data_change=true): the training/validation data of %s "
                    "differ from the checkpoint's: %s", run_dir, what)  # fmt: skip
        return
    raise RunError(f"resume={run_dir}: the training/validation data changed since the checkpoint ({what}); "
                   "continuing would train on different data. Pass resume_allow_data_change=true to continue anyway")


def trainer_config(cfg: DictConfig):
    """``cfg.trainer`` as a :class:`~calo_calib.training.loop.TrainerConfig`; an unknown key (with the
    closest known one) or a value of the wrong type is a :class:`RunError` naming ``trainer.<key>``."""
    import difflib
    import typing

    from calo_calib.training.loop import TrainerConfig

    values = {k: v for k, v in OmegaConf.to_container(cfg.trainer, resolve=True).items() if k != "device"}
    fields = typing.get_type_hints(TrainerConfig)  # field name -> bool | int | float | str
    for key, value in values.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields) + ["device"], n=1)
            hint = f"; did you mean trainer.{close[0]}?" if close else f"; known keys: {', '.join(fields)}, device"
            raise RunError(f"trainer.{key}: unknown key{hint}")
        kind = fields[key]
        ok = (isinstance(value, bool) if kind is bool else
              isinstance(value, int) and not isinstance(value, bool) if kind is int else
              isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else
              isinstance(value, str) if kind is str else True)  # fmt: skip
        if not ok:
            want = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[kind]
            raise RunError(f"trainer.{key}={value!r}: expected {want}")
    try:
        return TrainerConfig(**values)
    except ValueError as err:
        raise RunError(str(err)) from None


def adversary_name(cfg: DictConfig) -> str:
    """``adversary.name`` (``none`` for configs saved before the adversary option existed)."""
    adversary = cfg.get("adversary")
    return "none" if adversary is None else str(adversary.get("name", "none"))


def _paths(value: Any) -> list[Path]:
    return [Path(str(p)) for p in ([value] if isinstance(value, str) else list(value))]


# --- training ----------------------------------------------------------------------------------


def train_network(cfg: DictConfig, splits: dict[str, list[Path]], run_dir: Path, env: DistEnv, tracker: Tracker) -> dict[str, Any]:
    """Train a transformer / gnn_edge network; returns a training summary. Best weights: ``checkpoints/best.pt``."""
    from calo_calib.data.checks import data_fingerprint
    from calo_calib.data.normalization import NormStats, compute_norm_stats
    from calo_calib.evaluation.learning_curve import verdict as learning_curve_verdict
    from calo_calib.training import checkpoint as ckpt
    from calo_calib.training.loop import fit
    from calo_calib.training.losses import build_loss

    trainer_cfg = trainer_config(cfg)
    global_batch = int(cfg.data.batch_size)
    if global_batch % env.world_size:
        raise RunError(
            f"data.batch_size={global_batch} is the global batch (all ranks together) and must be a multiple of "
            f"the number of processes ({env.world_size})"
        )
    log.info(
        "global batch %d = %d process(es) x %d clusters; peak learning rate %g (not rescaled with the batch)",
        global_batch, env.world_size, global_batch // env.world_size, trainer_cfg.lr,
    )  # fmt: skip
    max_train = cfg.data.max_train_clusters
    train = make_dataset(
        cfg, splits["train"], shuffle=True, batch_size=int(cfg.data.batch_size),
        max_clusters=int(max_train) if max_train else None, rank=env.rank, world_size=env.world_size, training=True,
    )  # fmt: skip
    val = make_dataset(cfg, splits["val"], rank=env.rank, world_size=env.world_size, training=True)
    if len(train) == 0:
        raise RunError(f"no training clusters left after the selection in {splits['train']}: {train.counts}")

    last = run_dir / "checkpoints" / ckpt.LAST
    resuming = bool(cfg.resume) and last.exists()
    fingerprint = data_fingerprint([*splits["train"], *splits["val"]])  # checked on resume (_checked_splits)
    if resuming:
        norm = NormStats.from_dict(ckpt.load(last)["extra"]["norm"])
    else:
        t0 = time.perf_counter()
        norm = compute_norm_stats(train, max_clusters=int(cfg.data.norm_max_clusters))
        log.info("normalisation statistics from %d training clusters in %.1f s", min(len(train), int(cfg.data.norm_max_clusters)), time.perf_counter() - t0)
    if env.is_main:
        write_text_atomic(run_dir / "norm.json", json.dumps(norm.to_dict(), indent=2))

    seed_everything(int(cfg.seed))
    cells, clusters = cell_and_cluster_features(cfg)
    model = build_run_network(cfg, len(cells), len(clusters), norm.as_tensors())
    n_params = sum(p.numel() for p in model.parameters())
    log.info("%s: %d parameters; %d training / %d validation clusters", cfg.model.name, n_params, len(train), len(val))

    def on_epoch(record: dict[str, float]) -> None:
        tracker.log_scalars(record, step=int(record["epoch"]))

    adversary = _domain_adversary(cfg, model, env)

    t0 = time.perf_counter()
    state = fit(
        model,
        train_batches=train.batches,
        val_batches=lambda: val.batches(0),
        steps_per_epoch=train.steps_per_epoch(),
        loss_fn=build_loss(str(cfg.loss.name), float(cfg.loss.delta or 0.05)),
        cfg=trainer_cfg,
        run_dir=run_dir,
        env=env,
        resume=resuming,
        on_epoch=on_epoch,
        extra_state={"norm": norm.to_dict(), "model": OmegaConf.to_container(cfg.model, resolve=True), "data": fingerprint},
        adversary=adversary,
    )
    seconds = time.perf_counter() - t0
    rates = [h["train_clusters_per_s"] for h in state.history]
    return {
        "kind": "network",
        "n_parameters": n_params,
        "world_size": env.world_size,
        "global_batch": global_batch,
        "peak_lr": trainer_cfg.lr,
        "n_train": len(train),
        "n_val": len(val),
        "selection_train": train.counts,
        "epochs_run": len(state.history),
        "best_epoch": state.best_epoch,
        "best_val_loss": state.best_val,
        "train_seconds_this_session": seconds,
        "train_clusters_per_s": float(np.median(rates)) if rates else None,
        "resumed": resuming,
        "learning_curve": learning_curve_verdict(state.history),
        **({"adversary": _adversary_summary(state.history, adversary)} if adversary is not None else {}),
    }


def _domain_adversary(cfg: DictConfig, model: torch.nn.Module, env: DistEnv):
    """The :class:`~calo_calib.training.domain_adaptation.DomainAdversary` of ``adversary=grl``, else None.

    The unlabelled clusters (``data.unlabelled``) are read WITHOUT truth (``with_truth=False``), with
    the run's features and reconstruction-level selection, shuffled per (seed, epoch) like the
    labelled ones, one unlabelled batch of the same size per labelled batch.
    """
    from calo_calib.training.domain_adaptation import AdversaryConfig, DomainAdversary

    if adversary_name(cfg) == "none":
        return None
    try:
        adv_cfg = AdversaryConfig(**OmegaConf.to_container(cfg.adversary, resolve=True))
    except (TypeError, ValueError) as err:  # unknown key or bad value: name it
        raise RunError(f"adversary: {err}") from None
    unlabelled = make_dataset(
        cfg, _paths(cfg.data.unlabelled), shuffle=True, batch_size=int(cfg.data.batch_size),
        rank=env.rank, world_size=env.world_size, with_truth=False,
    )  # fmt: skip
    if len(unlabelled) == 0:
        raise RunError(f"data.unlabelled: no selected clusters in {cfg.data.unlabelled}: {unlabelled.counts}")
    log.info("domain adversary %s: %d unlabelled clusters from %s", adv_cfg.name, len(unlabelled), cfg.data.unlabelled)
    return DomainAdversary(adv_cfg, int(model.representation_dim), unlabelled.batches)


def _adversary_summary(history: list[dict[str, float]], adversary) -> dict[str, Any]:
    last = history[-1] if history else {}
    return {
        "name": adversary.cfg.name,
        "final_disc_acc": last.get("adv_disc_acc"),
        "final_disc_loss": last.get("adv_disc_loss"),
        "final_lambda": last.get("adv_lambda"),
        "checkpoint": adversary.cfg.checkpoint,
    }


def train_bdt(cfg: DictConfig, splits: dict[str, list[Path]], run_dir: Path) -> dict[str, Any]:
    """Train the XGBoost baseline (per (|η|, E_T) bin by default); saved under ``<run_dir>/bdt``.

    ``model.features`` (``atlas`` by default, ``atlas+shapes`` for ``model=bdt_shapes``) chooses the
    inputs; the saved manifest records it.
    """
    from calo_calib.models.bdt import BDTModel

    particle = str(cfg.particle.name)
    bdt_dir = run_dir / "bdt"
    if cfg.resume and (bdt_dir / "bdt.json").exists():
        log.info("resume: the BDT in %s is complete, not retrained", bdt_dir)
        return {"kind": "bdt", "resumed": True}
    m = cfg.model
    features = str(m.get("features", "atlas"))
    try:
        bdt = BDTModel(
            particle,
            binned=bool(m.binned),
            params={**OmegaConf.to_container(m.params, resolve=True), "seed": int(cfg.seed)},
            num_boost_round=int(m.num_boost_round),
            early_stopping_rounds=int(m.early_stopping_rounds),
            min_bin_clusters=int(m.min_bin_clusters),
            loss=str(cfg.loss.name),
            huber_delta=float(cfg.loss.delta or 0.05),
            nthread=int(m.get("nthread", 0)),
            max_train_target=m.get("max_train_target"),  # on its own target E_true/E_acc, after data.max_train_target
            features=features,
        )
    except ValueError as err:  # a bad model.* value: name it before any data is read
        raise RunError(f"model ({cfg.model.name}): {err}") from None
    max_train = cfg.data.max_train_clusters
    train = make_dataset(cfg, splits["train"], max_clusters=int(max_train) if max_train else None, training=True)
    val = make_dataset(cfg, splits["val"], training=True)
    t0 = time.perf_counter()
    train_inputs, val_inputs = bdt.dataset_inputs(train, truth=True), bdt.dataset_inputs(val, truth=True)
    input_seconds = time.perf_counter() - t0
    log.info("BDT inputs (%s) of %d + %d clusters in %.1f s", features, len(train), len(val), input_seconds)
    summary = bdt.fit(train_inputs, val_inputs, progress=bool(cfg.progress))
    bdt.save(bdt_dir)
    return {"kind": "bdt", "features": features, "input_seconds": input_seconds, "n_train": len(train), "n_val": len(val),
            "selection_train": train.counts, **summary}  # fmt: skip


# --- evaluation ----------------------------------------------------------------------------------


def find_reference_run(cfg: DictConfig, run_dir: Path, fingerprint: str) -> Path | None:
    """The BDT run to compare with: ``compare_to`` or, for ``auto``, the newest BDT run of this
    particle whose test data has the same fingerprint."""
    choice = cfg.compare_to
    if choice is None or str(choice) in ("null", "none", ""):
        return None
    if str(choice) != "auto":
        path = Path(str(choice))
        if not (path / "predictions.parquet").exists():
            raise RunError(f"compare_to={path}: no predictions.parquet there")
        return path
    # Single runs live in <runs>/<particle>/<model>-<loss>/<timestamp>; sweep jobs are siblings in
    # <sweep dir>/<job>/ (a BDT job of the same sweep counts once it has finished).
    candidates = list(run_dir.parent.parent.glob("bdt-*/*/metrics.json")) + list(run_dir.parent.glob("*/metrics.json"))
    candidates = sorted(set(candidates), key=lambda p: p.stat().st_mtime, reverse=True)
    for metrics_path in candidates:
        ref = metrics_path.parent
        if ref.resolve() == run_dir.resolve():
            continue
        try:
            meta = json.loads(metrics_path.read_text()).get("run", {})
        except (OSError, json.JSONDecodeError):
            continue
        if unfinished_reason(ref):  # crashed or still running: its predictions are not final
            continue
        if meta.get("model") == "bdt" and meta.get("test_fingerprint") == fingerprint and (ref / "predictions.parquet").exists():
            return ref
    return None


def evaluate_run(cfg: DictConfig, calibration: Calibration, splits: dict[str, list[Path]], run_dir: Path, tracker: Tracker, training: dict[str, Any]) -> dict[str, Any]:
    """Predict the test split, write predictions, metrics, summary and plots; returns the metrics."""
    from calo_calib.evaluation.plots import write_all_plots
    from calo_calib.evaluation.report import compare, evaluate, summary_markdown, write_metrics

    t0 = time.perf_counter()
    prediction, test = calibration.apply(splits["test"])
    predict_seconds = time.perf_counter() - t0
    truth = test.scalar_table(list(P.TRUTH_COLUMNS))
    name = str(cfg.model.name)
    table = P.build_predictions(truth, prediction.row_id, prediction.correction, name)
    if prediction.sigma is not None:
        table = U.add_sigma_column(table, prediction.row_id, prediction.sigma)
    fingerprint = P.dataset_fingerprint(splits["test"])

    reference = find_reference_run(cfg, run_dir, fingerprint) if name != "bdt" else None
    if reference is not None:
        try:
            table = P.add_method(table, pq.read_table(reference / "predictions.parquet"), "bdt")
            log.info("comparing with the BDT run %s", reference)
        except (ValueError, KeyError) as err:
            log.warning("BDT run %s not used for comparison: %s", reference, err)
            reference = None
    P.write_predictions(table, run_dir / "predictions.parquet")

    methods = P.method_names(table)
    metrics = evaluate(table, methods, n_boot=int(cfg.evaluation.n_boot), seed=int(cfg.seed), min_count=int(cfg.evaluation.min_count))
    comparison = compare(metrics, metrics, name, "bdt") if "bdt" in methods and name != "bdt" else None
    metrics["comparison_to_bdt"] = comparison
    metrics["run"] = {
        "model": name,
        "loss": str(cfg.loss.name),
        "adversary": adversary_name(cfg),
        "particle": str(cfg.particle.name),
        "run_dir": str(run_dir),
        "test_data": [str(p) for p in splits["test"]],
        "test_fingerprint": fingerprint,
        "test_selection": test.counts,
        "reference_bdt_run": str(reference) if reference else None,
        "commit": git_commit(),
        "predict_seconds": predict_seconds,
        "predict_clusters_per_s": len(test) / predict_seconds if predict_seconds > 0 else None,
        "training": training,
    }
    extra_md = ""
    uncertainty_pngs: list[Path] = []
    if prediction.sigma is not None:
        report, uncertainty_pngs = U.write_uncertainty(
            table, name, run_dir, min_count=int(cfg.evaluation.min_count), plots=bool(cfg.evaluation.plots)
        )
        metrics["uncertainty"] = {"inclusive": report["inclusive"], "expected": report["expected"], "definition": report["definition"]}
        extra_md += "\n".join(U.summary_lines(report))
    unlabelled_test = cfg.data.get("unlabelled_test")
    if unlabelled_test:
        metrics["data_like"] = evaluate_data_like(cfg, calibration, _paths(unlabelled_test), run_dir, metrics)
        extra_md += domain_shift_markdown(metrics["data_like"]["shift"], metrics["data_like"]["test_data"])
    write_metrics(metrics, run_dir / "metrics.json")
    write_text_atomic(run_dir / "summary.md", _summary_header(cfg, metrics) + summary_markdown(metrics, methods) + "\n" + extra_md)

    images: dict[str, Path] = {}
    if cfg.evaluation.plots:
        pngs = [*write_all_plots(table, metrics, methods, run_dir / "plots", comparison=comparison), *uncertainty_pngs]
        if (run_dir / "history.json").exists():  # networks: validation sigma_rel versus training clusters seen
            from calo_calib.evaluation.learning_curve import plot_learning_curve

            history = json.loads((run_dir / "history.json").read_text())
            title = f"{cfg.particle.name}, {cfg.model.name}"
            pngs += [p for p in [plot_learning_curve(history, run_dir / "plots" / "learning_curve.png", title)] if p]
        for path in pngs:
            images[f"plots/{Path(path).stem}"] = Path(path)
    _log_results(tracker, metrics, methods, images)
    return metrics


def evaluate_data_like(cfg: DictConfig, calibration: Calibration, paths: list[Path], out_dir: Path, mc_metrics: dict[str, Any],
                       stem: str = "predictions_data_like") -> dict[str, Any]:  # fmt: skip
    """Apply the calibration to a LABELLED data-like test set (a detector variant) and compare with MC.

    The truth of ``paths`` is used here only to measure (σ_rel, median response), never in training.
    Writes ``<out_dir>/<stem>.parquet``; returns ``{"test_data", "test_fingerprint", "n_clusters",
    "inclusive", "vs_e", "shift"}`` (``shift``: :func:`calo_calib.evaluation.domain_shift.domain_shift_summary`
    against ``mc_metrics``), plus ``"uncertainty"`` (inclusive pulls/coverage) for a σ-predicting network.
    """
    from calo_calib.evaluation.domain_shift import domain_shift_summary
    from calo_calib.evaluation.report import evaluate

    name = str(cfg.model.name)
    prediction, dataset = calibration.apply(paths)
    table = P.build_predictions(dataset.scalar_table(list(P.TRUTH_COLUMNS)), prediction.row_id, prediction.correction, name)
    if prediction.sigma is not None:
        table = U.add_sigma_column(table, prediction.row_id, prediction.sigma)
    P.write_predictions(table, Path(out_dir) / f"{stem}.parquet")
    methods = P.method_names(table)
    metrics = evaluate(table, methods, n_boot=int(cfg.evaluation.n_boot), seed=int(cfg.seed), min_count=int(cfg.evaluation.min_count))
    out = {
        "test_data": [str(p) for p in paths],
        "test_fingerprint": P.dataset_fingerprint(paths),
        "n_clusters": metrics["n_clusters"],
        "inclusive": metrics["inclusive"],
        "vs_e": metrics["vs_e"],
        "shift": domain_shift_summary(mc_metrics, metrics),
    }
    if prediction.sigma is not None:
        out["uncertainty"] = U.uncertainty_report(table, name, min_count=int(cfg.evaluation.min_count))["inclusive"]
    log.info("data-like sample %s: sigma_rel %.4f (MC %.4f), response shift %+.4f",
             ", ".join(out["test_data"]), out["shift"][name]["sigma_rel_data"], out["shift"][name]["sigma_rel_mc"],
             out["shift"][name]["response_shift"])  # fmt: skip
    return out


def _summary_header(cfg: DictConfig, metrics: dict[str, Any]) -> str:
    run = metrics["run"]
    lines = [
        f"# {run['model']} calibration of {run['particle']} ({run['loss']} loss"
        + (f", domain adversary {run['adversary']})" if run.get("adversary", "none") != "none" else ")"),
        "",
        f"Test clusters: {metrics.get('n_clusters')} from {', '.join(run['test_data'])}.",
        f"σ_rel = IQR / (1.349 ⟨E_reco/E_true⟩); errors from {cfg.evaluation.n_boot} bootstrap resamples.",
    ]
    if run["reference_bdt_run"]:
        lines.append(f"BDT reference: {run['reference_bdt_run']} (same test clusters).")
    elif run["model"] != "bdt":
        lines.append("No BDT run on the same test data was found: run `model=bdt` for this particle to get the ratio.")
    return "\n".join(lines) + "\n\n"


def _log_results(tracker: Tracker, metrics: dict[str, Any], methods: list[str], images: dict[str, Path]) -> None:
    if not tracker.active:
        return
    summary = {}
    for method, vals in metrics["inclusive"].items():
        for key, value in vals.items():
            summary[f"inclusive/{method}/{key}"] = value
    for key, value in (metrics.get("uncertainty") or {}).get("inclusive", {}).items():
        summary[f"uncertainty/{key}"] = value
    for method, vals in (metrics.get("data_like") or {}).get("shift", {}).items():
        for key, value in vals.items():
            summary[f"data_like/{method}/{key}"] = value
    tracker.set_summary(summary)
    for key in ("vs_e", "vs_abs_eta", "vs_e_abs_eta", "vs_mu"):
        if metrics.get(key):
            tracker.log_table(f"sigma_rel/{key}", _flatten_rows(metrics[key]))
    tracker.log_images(images)
    # metrics.json itself goes with the W&B run: calo_calib.comparison.loading.load_wandb reads runs back from it.
    tracker.save_file(Path(metrics["run"]["run_dir"]) / "metrics.json")


def _flatten_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Binned rows with nested per-method dicts -> flat records for a W&B table."""
    flat = []
    for row in rows:
        rec: dict[str, Any] = {}
        for k, v in row.items():
            if isinstance(v, dict):
                for kk, vv in v.items():
                    rec[f"{k}/{kk}"] = vv
            elif not isinstance(v, (list, tuple)):
                rec[k] = v
        flat.append(rec)
    return flat


# --- the run -------------------------------------------------------------------------------------


def train_and_evaluate(cfg: DictConfig, run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Train the configured calibration, evaluate it on the test split; returns metrics.json's content.

    Rank 0 writes every file; other ranks (torchrun) only train.
    """
    from calo_calib.run_status import COMPLETED, write_status
    from calo_calib.training.distributed import setup, teardown

    run_dir = Path(run_dir)
    check_config(cfg)
    env = setup(str(cfg.trainer.device))
    try:
        splits = _checked_splits(cfg, run_dir, env)  # before anything is written: a refused run changes nothing
        if env.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_status(run_dir, "running")
            write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        try:
            metrics = _train_and_evaluate(cfg, run_dir, env, splits)
        except BaseException as err:
            if env.is_main:
                write_status(run_dir, "failed", error=" ".join(str(err).split()) or type(err).__name__)
            raise
        if env.is_main:
            write_status(run_dir, COMPLETED)  # the last file of the run: compare/export trust only this
        return metrics
    finally:
        teardown()


def _checked_splits(cfg: DictConfig, run_dir: Path, env: DistEnv) -> dict[str, list[Path]]:
    """The splits (the default data generated on first use), checked before the run writes anything:
    :func:`check_data`, and on ``resume`` of a network the checkpoint's data fingerprint."""
    from calo_calib.data.checks import DataError, data_fingerprint
    from calo_calib.training import checkpoint as ckpt

    splits = resolve_splits(cfg) if env.is_main or not env.distributed else None
    if env.distributed:
        box = [splits]
        torch.distributed.broadcast_object_list(box, src=0)  # rank 0 may have generated the data
        splits = box[0]
    assert splits is not None
    check_data(cfg, splits)
    last = run_dir / "checkpoints" / ckpt.LAST
    if cfg.resume and run_calibration_class(cfg).is_network and last.exists():
        try:
            current = data_fingerprint([*splits["train"], *splits["val"]])
        except DataError as err:
            raise RunError(str(err)) from None
        data_fingerprint_check(cfg, ckpt.load(last)["extra"].get("data"), current, run_dir)
    return splits


def _train_and_evaluate(cfg: DictConfig, run_dir: Path, env: DistEnv, splits: dict[str, list[Path]]) -> dict[str, Any]:
    """:func:`train_and_evaluate` after the checks: training, evaluation."""
    tracker = open_tracker(
        str(cfg.logger.mode),
        run_dir,
        OmegaConf.to_container(cfg, resolve=True),
        project=str(cfg.logger.project),
        entity=cfg.logger.entity,
        name=f"{cfg.particle.name}/{cfg.model.name}-{cfg.loss.name}/{run_dir.name}",
        group=str(cfg.logger.group),
        tags=[str(t) for t in cfg.logger.tags],
        enabled=env.is_main,
    )
    try:
        kind = run_calibration_class(cfg)
        if kind.is_network:  # every rank trains (DDP)
            training = train_network(cfg, splits, run_dir, env, tracker)
        else:
            training = train_bdt(cfg, splits, run_dir) if env.is_main else {}
        calibration = kind(run_dir, cfg, device=str(env.device)) if env.is_main else None
        metrics = evaluate_run(cfg, calibration, splits, run_dir, tracker, training) if env.is_main else {}
    finally:
        tracker.finish()
    return metrics
