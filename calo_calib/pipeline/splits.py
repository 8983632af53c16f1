"""The train / val / test files of a run: the configured paths, or the default dataset (generated on first use)."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from calo_calib.pipeline.checks import SPLITS, RunError

log = logging.getLogger("calo_calib.pipeline")


def resolve_splits(cfg: DictConfig) -> dict[str, list[Path]]:
    """Dataset directories (or files) per split: explicit ``data.<split>`` or the default dataset.

    The default dataset (``data.root/<particle>/<split>``) is generated on first use.
    """
    particle = str(cfg.particle.name)
    explicit = {s: cfg.data.get(s) for s in SPLITS}
    out: dict[str, list[Path]] = {}
    missing_default = [s for s, v in explicit.items() if v is None]
    if missing_default:
        from calo_calib.config import make_data_config
        from calo_calib.simulation.default_data import ensure_default_data, split_dir

        root = Path(str(cfg.data.root))
        if not all((split_dir(root, particle, s) / "dataset.json").exists() for s in missing_default):
            log.info("default %s data not found in %s: generating it (once)", particle, root)
            sizes = [f"splits.{k}={int(v)}" for k, v in (cfg.data.get("make_splits") or {}).items()]
            overrides = [f"progress={str(bool(cfg.progress)).lower()}", *sizes]
            ensure_default_data(particle, make_data_config(), root=root, overrides=overrides)
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
