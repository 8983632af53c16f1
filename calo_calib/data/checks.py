"""Data checks that turn silently wrong inputs into one clear error (docs/reliability.md).

* :func:`open_parquet`: a shard that is not a readable Parquet file (truncated copy, text) is named.
* :func:`check_dataset_complete`: a dataset directory whose shards say they are part of a set of
  ``n_shards`` must hold all of them, of one provenance, with its ``dataset.json``.
* :func:`check_column_types`: a string column where a number is expected.
* :data:`PHYSICAL_RANGES` / :func:`out_of_range_rows`: finite but absurd values (beyond the calorimeter).
* :func:`check_particle`: the data's ``particle`` column (and conversion types) against the
  calibration's particle type.
* :func:`data_fingerprint`: a cheap identity of the training/validation data (resume checks it).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from calo_calib.io.parquet import METADATA_KEY


class DataError(ValueError):
    """The input data cannot be used as they are; the message names the file, row, column or key."""


def _one_line(err: BaseException) -> str:
    return "; ".join(s.strip() for s in str(err).splitlines() if s.strip()) or type(err).__name__


def open_parquet(path: str | os.PathLike[str]) -> pq.ParquetFile:
    """Open a Parquet file's footer; a damaged or truncated file is a :class:`DataError` naming it."""
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise DataError(f"{path}: not a readable Parquet file (truncated or damaged shard?): {_one_line(err)}; "
                        "re-copy or regenerate it") from None  # fmt: skip


def _shard_metadata(path: Path) -> dict[str, Any] | None:
    meta = (open_parquet(path).schema_arrow.metadata or {}).get(METADATA_KEY)
    if meta is None:
        return None
    try:
        out = json.loads(meta)
    except ValueError:
        return None
    return out if isinstance(out, dict) else None


_PER_SHARD_KEYS = ("shard", "shard_index", "n_clusters")


def _resume_hint(directory: Path, meta: dict[str, Any]) -> str:
    """How to complete an interrupted dataset, from a shard's provenance."""
    if "shard" in meta and isinstance(meta.get("config"), dict):
        cfg = meta["config"]
        keys = [f"particle={meta.get('particle')}", f"n_clusters={cfg.get('n_clusters')}",
                f"shard_size={cfg.get('shard_size')}", f"seed={meta.get('seed')}"]  # fmt: skip
        if "mu" in cfg:
            keys.append(f"mu={cfg['mu']}")
        return (f"complete it with `python -m calo_calib.simulate {' '.join(keys)} out={directory} resume=true` "
                "(plus any other non-default setting it was made with, recorded in each shard's metadata 'config'; "
                "the default data: `python -m calo_calib.make_data`), or regenerate it")  # fmt: skip
    return "convert or copy it again (a converted dataset is complete only with all its shards and dataset.json)"


def check_dataset_complete(directory: str | os.PathLike[str], shards: Sequence[Path]) -> None:
    """Refuse an incomplete or mixed dataset directory.

    Shards written by ``calo_calib.simulate`` (``shard``, ``n_shards``) or by a converter
    (``shard_index``, ``n_shards``) must all be there (indices ``0 .. n_shards-1``), share one
    provenance (everything but the per-shard keys), and the directory must hold ``dataset.json``
    (written last: without it the generation was interrupted). Foreign shards (no ``calo_calib``
    metadata) are not checked, unless mixed with ours.

    Raises:
        DataError: naming the directory, the missing shards or the differing shard, and how to complete it.
    """
    directory = Path(directory)
    metas = {Path(s): _shard_metadata(Path(s)) for s in shards}
    ours = {
        s: m for s, m in metas.items() if m is not None and "n_shards" in m and ("shard" in m or "shard_index" in m)
    }
    if not ours:
        return
    first_path, first = next(iter(ours.items()))
    foreign = [s for s in metas if s not in ours]
    if foreign:
        raise DataError(f"{directory}: mixed provenance: {foreign[0].name} is not part of the set of {first_path.name} "
                        f"(no calo_calib shard metadata); keep one dataset per directory")  # fmt: skip
    identity = {k: v for k, v in first.items() if k not in _PER_SHARD_KEYS}
    for s, m in ours.items():
        other = {k: v for k, v in m.items() if k not in _PER_SHARD_KEYS}
        if other != identity:
            keys = sorted(k for k in set(identity) | set(other) if identity.get(k) != other.get(k))
            raise DataError(f"{directory}: mixed provenance: {s.name} differs from {first_path.name} in {keys}; "
                            "a dataset directory must hold shards of one generation (seed, settings)")  # fmt: skip
    n_shards = int(first["n_shards"])
    present = sorted(int(m.get("shard", m.get("shard_index", -1))) for m in ours.values())
    missing = sorted(set(range(n_shards)) - set(present))
    hint = _resume_hint(directory, first)
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        raise DataError(f"{directory}: incomplete dataset: {len(present)} of {n_shards} shards present (missing shard "
                        f"index(es) {shown}); {hint}")  # fmt: skip
    if not (directory / "dataset.json").is_file():
        raise DataError(f"{directory}: dataset.json is missing although its {n_shards} shard(s) are part of a generated "
                        f"set (it is written last: the generation was interrupted); {hint}")  # fmt: skip


def check_column_types(
    path: Path, schema: pa.Schema, scalar_columns: Sequence[str], cell_columns: Sequence[str]
) -> None:
    """A used column must hold numbers (scalar columns) or lists of numbers (cell columns).

    Raises:
        DataError: ``<file>: column 'x' has type string, expected a number`` (e.g. a CSV import gone wrong).
    """
    for c in list(scalar_columns) + list(cell_columns):
        t = schema.field(c).type
        values = t.value_type if (pa.types.is_list(t) or pa.types.is_large_list(t)) else t
        if c == "particle":
            continue
        if not (pa.types.is_floating(values) or pa.types.is_integer(values) or pa.types.is_boolean(values)):
            raise DataError(f"{path}: column {c!r} has type {t}, expected numbers (float or integer"
                            f"{' values per cell' if c in cell_columns else ''}); fix the column's type in the file")  # fmt: skip


PHYSICAL_RANGES: dict[str, float] = {
    # positions [mm]: beyond the calorimeter (|x|, |y| > 5 m, |z| > 7 m)
    "cell_x": 5000.0, "cell_y": 5000.0, "cell_z": 7000.0,
    # energies [GeV]: beyond 10 TeV
    "cluster_e": 1e4, "cluster_e_ps": 1e4, "cluster_e_l1": 1e4, "cluster_e_l2": 1e4, "cluster_e_l3": 1e4,
    "cluster_e_tg3": 1e4, "cell_e": 1e4, "truth_e": 1e4, "conv_pt": 1e4,
    # pseudorapidity beyond |eta| = 5
    "cluster_eta": 5.0, "cell_eta": 5.0, "truth_eta": 5.0,
}  # fmt: skip
"""Largest physical |value| of a column (units of docs/data_format.md); a finite value beyond it is absurd."""

OUT_OF_RANGE_MODES = ("error", "drop", "allow")


def out_of_range_rows(t: pa.Table, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """``{column: bool (n,)}``: rows of ``t`` with a finite value of ``column`` beyond :data:`PHYSICAL_RANGES`."""
    n = t.num_rows
    out: dict[str, np.ndarray] = {}
    for c in columns:
        limit = PHYSICAL_RANGES.get(c)
        if limit is None or c not in t.column_names:
            continue
        col = t[c]
        is_list = pa.types.is_list(col.type) or pa.types.is_large_list(col.type)
        values = pc.list_flatten(col) if is_list else col
        if len(values) == 0 or not pa.types.is_floating(values.type):
            continue
        mm = pc.min_max(values)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if lo is None or (abs(lo) <= limit and abs(hi) <= limit):
            continue
        arr = (
            values.to_numpy(zero_copy_only=False)
            if not isinstance(values, pa.ChunkedArray)
            else values.combine_chunks().to_numpy(zero_copy_only=False)
        )
        bad_values = np.isfinite(arr) & (np.abs(arr) > limit)
        if not bad_values.any():
            continue
        if is_list:
            parents = pc.list_parent_indices(col)
            parents = (parents.combine_chunks() if isinstance(parents, pa.ChunkedArray) else parents).to_numpy()
            rows = np.zeros(n, dtype=bool)
            rows[parents[bad_values]] = True
        else:
            rows = bad_values
        out[c] = rows
    return out


def check_particle(files: Sequence[Path], expected: str, *, what: str, override: str, allow: bool = False) -> list[str]:
    """Compare the files' ``particle`` column (and conversion types) with the calibration's particle type.

    ``photon_conv`` clusters must have ``conversion_type > 0``, ``photon_unconv`` and ``electron``
    clusters ``conversion_type == 0``. Files without a ``particle`` column (foreign data) are not checked.

    Args:
        what: how the caller names the data (e.g. ``data.train``); ``override``: the switch that
            allows a mismatch (named in the message).

    Returns:
        The mismatch messages (empty if all agree); with ``allow`` they are returned (to be logged).

    Raises:
        DataError: on a mismatch without ``allow``, naming the file, the types found and the override.
    """
    problems: list[str] = []
    for f in files:
        pf = open_parquet(f)
        names = pf.schema_arrow.names
        if "particle" not in names:
            continue
        cols = ["particle"] + (["conversion_type"] if "conversion_type" in names else [])
        t = pf.read(columns=cols)
        found = sorted(str(v) for v in pc.unique(t["particle"]).to_pylist())
        if found and found != [expected]:
            problems.append(f"{what}: {f} holds particle {found}, the calibration is for particle={expected}")
            continue
        if "conversion_type" in cols and t.num_rows:
            ct = t["conversion_type"].to_numpy()
            bad = int((ct == 0).sum()) if expected == "photon_conv" else int((ct != 0).sum())
            if bad:
                want = "conversion_type > 0" if expected == "photon_conv" else "conversion_type == 0"
                problems.append(f"{what}: {f}: {bad} of {t.num_rows} clusters violate {want} of particle={expected}")
    if problems and not allow:
        raise DataError(f"{problems[0]}; pass {override} to use them anyway")
    return problems


def data_fingerprint(paths: Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """A cheap identity of a dataset: per file its name, size, row count and a hash of its calo_calib
    metadata (the shard provenance), plus one digest of it all (no data are read, only footers)."""
    from calo_calib.io.parquet import resolve_paths

    files: list[Path] = []
    for p in paths:
        files += resolve_paths(p)
    desc = []
    for f in sorted({Path(f).resolve() for f in files}):
        pf = open_parquet(f)
        meta = (pf.schema_arrow.metadata or {}).get(METADATA_KEY, b"")
        desc.append([str(f), f.stat().st_size, pf.metadata.num_rows, hashlib.sha256(meta).hexdigest()[:16]])
    digest = hashlib.sha256(json.dumps(desc).encode()).hexdigest()[:16]
    return {"digest": digest, "files": desc}
