"""Compose a Hydra config of ``conf/`` outside a Hydra app: the one composer of the package.

Every ``compose_*`` entry point (:func:`calo_calib.run.compose_run_config`,
:func:`calo_calib.simulation.compose_config`, :func:`calo_calib.validate.compose_validate_config`,
:func:`calo_calib.zee.candle.compose_candle_config`) calls :func:`compose` and keeps only its own
validation or post-processing. Inside a ``@hydra.main`` app the config comes from Hydra itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig


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
