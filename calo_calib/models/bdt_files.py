"""The saved layout of a :class:`~calo_calib.models.bdt.BDTModel`: ``<dir>/<booster>.json`` (XGBoost
JSON models) and the manifest ``<dir>/bdt.json`` (bins, routes, params, inputs, version), each
written atomically; the manifest is written last, so its presence marks a complete model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import xgboost as xgb

from calo_calib.models.bdt_params import FORMAT_VERSION, MANIFEST

if TYPE_CHECKING:
    from calo_calib.models.bdt import BDTModel


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (never a half-written file)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_model(model: BDTModel, directory: Path | str) -> None:
    """Write ``<directory>/<booster>.json`` then the manifest ``bdt.json`` (each atomically)."""
    if not model.routes:
        raise RuntimeError("BDTModel: nothing to save (call fit first)")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for name, booster in model.boosters.items():
        write_atomic(d / f"{name}.json", bytes(booster.save_raw("json")))
    manifest = {
        "version": FORMAT_VERSION,
        "config": model._config(),
        "input_names": model.input_names,
        "bins": model.bins,
        "routes": model.routes,
        "boosters": {name: {"file": f"{name}.json", "inputs": model.booster_inputs[name]} for name in model.boosters},
        "summary": model.summary,
    }
    write_atomic(d / MANIFEST, json.dumps(manifest, indent=1, default=float).encode())


def load_model(cls: type[BDTModel], directory: Path | str, nthread: int | None = None) -> BDTModel:
    """Load a model written by :func:`save_model` (``nthread`` overrides the saved thread count).

    A manifest without ``features`` (written before the option existed) loads as ``atlas``.
    """
    d = Path(directory)
    path = d / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{d} holds no BDT: {path} is missing")
    manifest = json.loads(path.read_text())
    if manifest.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: version {manifest.get('version')!r}, expected {FORMAT_VERSION!r}")
    cfg = dict(manifest["config"])
    if nthread is not None:
        cfg["nthread"] = nthread
    model = cls(**cfg)
    if len(manifest["routes"]) != len(model.bins):
        raise ValueError(f"{path}: {len(manifest['routes'])} routes for {len(model.bins)} bins")
    model.routes = list(manifest["routes"])
    for name, entry in manifest["boosters"].items():
        booster = xgb.Booster(params={"nthread": model.nthread} if model.nthread > 0 else None)
        booster.load_model(str(d / entry["file"]))
        model.boosters[name] = booster
        model.booster_inputs[name] = list(entry["inputs"])
    missing = set(model.routes) - set(model.boosters)
    if missing:
        raise ValueError(f"{path}: routes use boosters {sorted(missing)} that are not listed")
    model.summary = manifest.get("summary", {})
    return model
