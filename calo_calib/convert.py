"""Convert cluster data between Parquet datasets, SALT HDF5 files and ROOT ntuples.

Usage::

    python -m calo_calib.convert SRC [SRC ...] DST [--to salt_h5|root|parquet] [--tree NAME]
        [--mapping YAML] [--max-cells N] [--truncate] [--norm PATH] [--overwrite] [--no-progress]

The input format is inferred from SRC: a directory of ``*.parquet`` shards or ``.parquet`` files ->
Parquet, ``.h5``/``.hdf5`` -> SALT HDF5, ``.root`` (or a directory of them) -> ROOT. The output format
is ``--to``, else inferred from DST's extension (``.h5``/``.hdf5``, ``.root``; anything else is a
Parquet dataset directory). SALT HDF5 <-> ROOT goes through a temporary Parquet dataset next to DST.
See ``docs/formats.md``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m calo_calib.convert",
        description="Convert cluster data between Parquet datasets, SALT HDF5 and ROOT ntuples (docs/formats.md).",
    )
    p.add_argument("src", nargs="+", type=Path, help="input: dataset directory, .parquet, .h5/.hdf5 or .root file(s)")
    p.add_argument("dst", type=Path, help="output: .h5/.hdf5 file, .root file, or a dataset directory")
    p.add_argument("--to", choices=FORMATS, help="output format (default: from DST's extension)")
    p.add_argument("--tree", help="ROOT tree name (default: the mapping's 'tree', else 'clusters')")
    p.add_argument("--mapping", type=Path, help="ROOT column mapping YAML (default: same-name branches, "
                   "as conf/data/root_columns/default.yaml)")  # fmt: skip
    p.add_argument("--max-cells", type=int, help="SALT HDF5: width of the cells dataset (default: the largest n_cells)")
    p.add_argument("--truncate", action="store_true",
                   help="SALT HDF5: keep the max-cells most energetic cells of larger clusters instead of failing")  # fmt: skip
    p.add_argument("--norm", type=Path, help="SALT HDF5: norm dict YAML path (default: <dst stem>.norm.yaml)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (errors are printed, not raised)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        out = convert(
            args.src, args.dst, args.to, tree=args.tree, mapping=args.mapping, max_cells=args.max_cells,
            truncate=args.truncate, norm_path=args.norm, overwrite=args.overwrite, progress=not args.no_progress,
        )  # fmt: skip
    except (
        ValueError,
        TypeError,
        OSError,
    ) as err:  # OSError: FileNotFoundError, FileExistsError, IsADirectoryError, ...
        message = "; ".join(line.strip() for line in str(err).splitlines() if line.strip()) or type(err).__name__
        print(f"calo_calib.convert: error: {message}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
