"""Compose a Hydra config of ``conf/`` outside a Hydra app: the one composer of the package.

Every ``compose_*`` function (:func:`compose_run_config`,
:func:`calo_calib.simulation.compose_config`, :func:`calo_calib.validate.compose_validate_config`,
:func:`calo_calib.zee.candle.compose_candle_config`) calls :func:`compose` and keeps only its own
validation or post-processing. Inside a ``@hydra.main`` app the config comes from Hydra itself.

Importing this module registers the resolvers of ``conf/run.yaml`` (``${calo_or:}``, ``${calo_stamp:}``,
``${calo_default_loss:}``), so ``compose("run")`` and ``python -m calo_calib.run`` both resolve them, and
the typed schemas of the config groups (:mod:`calo_calib.config_schema`) in Hydra's ConfigStore.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf

from calo_calib.config_schema import register_schemas


def compose(config_name: str, overrides: Sequence[str] = (), *, return_hydra_config: bool = False) -> DictConfig:
    """``conf/<config_name>.yaml`` composed with Hydra ``overrides`` (e.g. ``["particle=electron"]``).

    Clears any global Hydra state first (a previous compose, or a running app), so calls are
    independent; the config directory is :func:`calo_calib.paths.conf_dir` (``CALO_CALIB_CONF_DIR``
    or ``<repo>/conf``). ``return_hydra_config=True`` keeps the ``hydra`` node (sweeper, launcher).

    Raises:
        FileNotFoundError: the config directory is missing (see :func:`~calo_calib.paths.conf_dir`).
        hydra.errors.ConfigCompositionException / MissingConfigException: a bad override or group option.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from calo_calib.paths import conf_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        return hydra_compose(config_name=config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)


def compose_run_config(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``conf/run.yaml`` with overrides outside a Hydra app (tests, benchmarks, notebooks, studies)."""
    return compose("run", overrides)


def config_file(config_name: str) -> DictConfig:
    """``conf/<config_name>.yaml`` read as written, less its ``defaults`` and ``hydra`` nodes.

    Read with OmegaConf, not composed: the training entry point and the sweep callbacks ask for one
    from inside their own Hydra app, whose global state a compose would clear.
    """
    from calo_calib.paths import conf_dir

    cfg = OmegaConf.load(conf_dir() / f"{config_name}.yaml")
    for key in ("defaults", "hydra"):
        cfg.pop(key, None)
    return cfg


def make_data_config() -> DictConfig:
    """The default dataset's settings (:func:`config_file` of ``make_data``), handed to
    :func:`calo_calib.simulation.default_data.ensure_default_data`."""
    return config_file("make_data")


def group_options(group: str) -> list[str]:
    """The options of a config group: the names of ``conf/<group>/*.yaml``, sorted."""
    from calo_calib.paths import conf_dir

    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


def detector_config(name: str = "nominal") -> DictConfig:
    """``conf/detector/<name>.yaml`` as written (its ``defaults`` list not applied): the nominal
    detector, against which the simulation finds unknown ``detector.*`` keys
    (:func:`calo_calib.simulation.knobs.validate_knobs`)."""
    from calo_calib.paths import conf_dir

    return OmegaConf.load(conf_dir() / "detector" / f"{name}.yaml")


def one_line_error(err: BaseException) -> str:
    """A composition error and its cause (the schema's ``full_key: trainer.epochs``) as one line."""
    lines = [str(err)] + ([str(err.__cause__)] if err.__cause__ is not None else [])
    parts = [line.strip() for text in lines for line in text.splitlines()]
    if "Config search path:" in parts:  # after a missing group option: Hydra's search path, not news
        parts = parts[: parts.index("Config search path:")]
    keep = [p for p in parts if p and not p.startswith(("reference_type=", "object_type="))]
    return "; ".join(dict.fromkeys(keep))


def exit_on_composition_error(config_name: str, argv: Sequence[str], prog: str) -> None:
    """Before ``@hydra.main`` runs a single job: compose ``config_name`` with the command line's
    overrides and turn a composition error (an unknown key, a value of the wrong type for the schema,
    a missing group option) into ONE line ``calo_calib.<prog>: error: ...`` instead of Hydra's
    multi-line report. Command lines with flags (``-m``, ``--cfg``, ...) are left to Hydra.
    """
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if any(arg.startswith("-") for arg in argv):
        return
    try:
        compose(config_name, argv)
    except (HydraException, OmegaConfBaseException) as err:
        raise SystemExit(f"calo_calib.{prog}: error: {one_line_error(err)}") from None


# --- the resolvers of conf/run.yaml --------------------------------------------------------------


def _first_set(value, default):
    """``${calo_or:a,b}``: ``a`` unless it is null (lets ``resume=<dir>`` choose the run directory)."""
    return default if value in (None, "", "None", "null") else value


STAMP_FORMAT = "%Y%m%d-%H%M%S-%f"
"""Run directory timestamps, to the microsecond: two runs started in the same second (a loop over
seeds, a job array) get different directories instead of overwriting each other's checkpoints."""
_last_stamp: str | None = None


def _run_stamp() -> str:
    """``${calo_stamp:}``: the run directory's timestamp (:data:`STAMP_FORMAT`, never the same twice in
    one process). ``CALO_CALIB_RUN_STAMP`` when set (all torchrun workers agree on it, see
    :func:`calo_calib.training.distributed.shared_run_stamp`)."""
    global _last_stamp
    if os.environ.get("CALO_CALIB_RUN_STAMP"):
        return os.environ["CALO_CALIB_RUN_STAMP"]
    stamp = dt.datetime.now().strftime(STAMP_FORMAT)
    while stamp == _last_stamp:
        stamp = dt.datetime.now().strftime(STAMP_FORMAT)
    _last_stamp = stamp
    return stamp


def _default_loss(model_kind: str, field: str = "name"):
    """``${calo_default_loss:${model.kind}[,delta]}``: the loss of ``loss=auto`` for this kind of model.

    Networks: ``pull_huber`` (residuals in units of the expected resolution, Huber beyond 2 pulls),
    the BDT: ``mse`` (trained per E_T bin, it needs no rescaling); measured in docs/models.md
    "Training recipe".
    """
    name, delta = DEFAULT_LOSS.get(str(model_kind), DEFAULT_LOSS["bdt"])
    return name if field == "name" else delta


DEFAULT_LOSS: dict[str, tuple[str, float | None]] = {"network": ("pull_huber", 2.0), "bdt": ("mse", None)}
"""model.kind -> (loss name, delta) chosen by ``loss=auto``, the default."""

if not OmegaConf.has_resolver("calo_default_loss"):
    OmegaConf.register_new_resolver("calo_default_loss", _default_loss)
if not OmegaConf.has_resolver("calo_or"):
    OmegaConf.register_new_resolver("calo_or", _first_set)
if not OmegaConf.has_resolver("calo_stamp"):
    OmegaConf.register_new_resolver("calo_stamp", _run_stamp, use_cache=True)

register_schemas()
