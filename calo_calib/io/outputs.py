"""Checks on an output path made before any work: never write over an input, nothing replaced by surprise.

A tool that writes a file next to the user's data must refuse a destination that is, or resolves
to (symlink, ``..``, hard link), one of its inputs, or a directory that holds one of them, and must
not replace an existing file unless asked. These checks run before anything is read or computed,
so a mistyped ``output=`` costs nothing and changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

PathLike = str | os.PathLike[str]


class OutputError(ValueError):
    """The output path cannot be used (it is an input, a directory, or exists without overwrite)."""


def _same(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name the same file or directory (symlinks, ``..``, hard links)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_not_input(output: PathLike, inputs: Iterable[PathLike], *, what: str = "output", kind: str = "input") -> None:
    """Refuse an ``output`` that is one of ``inputs`` (files or directories, as given: list the files a
    directory input consists of explicitly), or a directory that contains one of them.

    Raises:
        OutputError: naming the output, the ``kind`` of path it collides with (input, model) and, when
            the two names differ, what the output resolves to.
    """
    out = Path(output)
    out_real = out.resolve()
    for src in map(Path, inputs):
        if _same(out, src):
            noun = f"{kind} directory" if src.is_dir() else f"{kind} file"
            via = "" if str(out) == str(src) else f" (it resolves to {out_real})"
            raise OutputError(
                f"{what} {out} is the {noun} {src}{via}: refusing to write over it; choose another {what}"
            )
        if out.is_dir() and src.resolve().is_relative_to(out_real):
            raise OutputError(f"{what} {out} is a directory that holds the {kind} file {src}: refusing to replace it")


def check_output_file(output: PathLike, inputs: Iterable[PathLike], overwrite: bool = False, *, what: str = "output",
                      option: str = "overwrite=true", models: Iterable[PathLike] = ()) -> Path:  # fmt: skip
    """Check a file destination before any work; returns it as a Path.

    ``models`` are inputs too, named "model" in the message.

    Raises:
        OutputError: ``output`` is an input or a model (see :func:`check_not_input`), a directory, lies below a
            path that is not a directory, or exists and ``overwrite`` is false.
    """
    out = Path(output)
    check_not_input(out, models, what=what, kind="model")
    check_not_input(out, inputs, what=what)
    if out.is_dir():
        raise OutputError(f"{what} {out} is a directory; give a file name (e.g. {out / 'predictions.parquet'})")
    for parent in out.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise OutputError(f"{what} {out}: {parent} exists and is not a directory")
            break
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise OutputError(f"{what} {out} already exists; pass {option} to replace it")
    return out
