"""Convert cluster data between Parquet datasets, SALT HDF5 files and ROOT ntuples: :func:`convert`
(what ``python -m calo_calib.convert`` calls; the formats: :mod:`calo_calib.io.salt_h5`, :mod:`calo_calib.io.root_io`).

The input format is inferred from SRC: a directory of ``*.parquet`` shards or ``.parquet`` files ->
Parquet, ``.h5``/``.hdf5`` -> SALT HDF5, ``.root`` (or a directory of them) -> ROOT. The output format
is ``to``, else inferred from DST's extension (``.h5``/``.hdf5``, ``.root``; anything else is a
Parquet dataset directory). SALT HDF5 <-> ROOT goes through a temporary Parquet dataset next to DST.
:func:`check_destinations` refuses, before any work, a destination that is one of the inputs.
See ``docs/formats.md``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

FORMATS = ("parquet", "salt_h5", "root")
_H5_SUFFIXES = (".h5", ".hdf5")


def infer_format(path: Path, *, output: bool = False) -> str:
    """The format of an input (``output=False``) or output path, from its suffix or directory contents.

    Raises:
        ValueError: an input whose format cannot be recognised.
    """
    suffix = path.suffix.lower()
    if suffix in _H5_SUFFIXES:
        return "salt_h5"
    if suffix == ".root":
        return "root"
    if output:
        return "parquet"
    if suffix == ".parquet":
        return "parquet"
    if path.is_dir():
        if any(path.glob("*.parquet")):
            return "parquet"
        if any(path.glob("*.root")):
            return "root"
        raise ValueError(f"{path}: directory holds neither *.parquet nor *.root files")
    raise ValueError(f"{path}: cannot infer the format (expected a dataset directory, .parquet, .h5/.hdf5 or .root)")


def convert(
    src: Sequence[Path],
    dst: Path,
    to: str | None = None,
    *,
    tree: str | None = None,
    mapping: Path | None = None,
    max_cells: int | None = None,
    truncate: bool = False,
    norm_path: Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Convert ``src`` (one or more inputs of one format) to ``dst`` in format ``to`` (default: inferred).

    Returns:
        ``dst``.

    Raises:
        ValueError: unknown or mixed input formats, a conversion to the input's own format, several
            HDF5 inputs, a destination that is (or resolves to) an input (:func:`check_destinations`,
            checked before any work, even with ``overwrite``), or an error from the converter (which
            names the file, column or row).
        FileExistsError: the destination exists and ``overwrite`` is false (checked before any work).
    """
    from calo_calib.io import root_io, salt_h5  # heavy imports (h5py, uproot) only when converting

    src = [Path(s) for s in src]
    fmts = {infer_format(s) for s in src}
    if len(fmts) != 1:
        raise ValueError(f"inputs of mixed formats {sorted(fmts)}: {[str(s) for s in src]}")
    src_fmt = fmts.pop()
    dst_fmt = to or infer_format(dst, output=True)
    if dst_fmt not in FORMATS:
        raise ValueError(f"unknown output format {dst_fmt!r}; choose from {FORMATS}")
    if dst_fmt == src_fmt:
        raise ValueError(f"{src[0]} is already {src_fmt}: nothing to convert")
    if src_fmt == "salt_h5" and len(src) != 1:
        raise ValueError("convert one HDF5 file at a time")
    check_destinations(src, dst, dst_fmt, norm_path=norm_path, mapping=mapping, overwrite=overwrite)
    one_src = src[0] if len(src) == 1 else src

    def from_parquet(pq_src: Path | list[Path]) -> Path:
        if dst_fmt == "salt_h5":
            return salt_h5.parquet_to_salt_h5(
                pq_src, dst, max_cells, truncate=truncate, norm_path=norm_path, overwrite=overwrite, progress=progress
            )
        return root_io.parquet_to_root(pq_src, dst, tree, mapping, overwrite=overwrite, progress=progress)

    def to_parquet(out: Path, replace: bool) -> Path:
        if src_fmt == "salt_h5":
            return salt_h5.salt_h5_to_parquet(src[0], out, overwrite=replace, progress=progress)
        return root_io.root_to_parquet(one_src, tree, mapping, out, overwrite=replace, progress=progress)

    if src_fmt == "parquet":
        return from_parquet(one_src)
    if dst_fmt == "parquet":
        return to_parquet(dst, overwrite)
    # HDF5 <-> ROOT: through a temporary Parquet dataset on the destination's file system.
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{dst.name}.", dir=dst.parent) as tmp:
        mid = to_parquet(Path(tmp) / "parquet", False)
        return from_parquet(mid)


def check_destinations(src: Sequence[Path], dst: Path, dst_fmt: str, *, norm_path: Path | None = None,
                       mapping: Path | None = None, overwrite: bool = False) -> None:  # fmt: skip
    """Before any work: refuse a destination (``dst``, and the norm dict for HDF5) that is, or resolves
    to, an input (a SRC file, a file below a SRC directory, the mapping YAML) or a directory holding
    one, whatever ``overwrite`` says; and an existing destination without ``overwrite``.

    Raises:
        OutputError: (a ValueError) naming the destination and the input it collides with.
        FileExistsError, IsADirectoryError, ValueError: from the destination checks of the writers.
    """
    from calo_calib.io.dataset_stream import check_dataset_destination, check_file_destination
    from calo_calib.io.outputs import OutputError, check_not_input
    from calo_calib.io.salt_h5 import default_norm_path

    inputs: list[Path] = []
    for s in map(Path, src):  # the paths given and the files actually read
        inputs.append(s)
        if s.is_dir():
            inputs += sorted(f for f in s.glob("*.parquet") if f.is_file()) + sorted(
                f for f in s.glob("*.root") if f.is_file()
            )
            inputs += [f for f in (s / "dataset.json",) if f.exists()]
    if isinstance(mapping, (str, os.PathLike)):
        inputs.append(Path(mapping))
    check_not_input(dst, inputs, what="destination")
    if dst_fmt == "salt_h5":
        norm = Path(norm_path) if norm_path is not None else default_norm_path(dst)
        check_not_input(norm, inputs, what="norm dict")
        if norm.resolve() == dst.resolve():
            raise OutputError(f"norm dict {norm} is the destination {dst}: choose another --norm")
    if dst_fmt == "parquet":
        check_dataset_destination(dst, overwrite)
    else:
        check_file_destination(dst, overwrite)
