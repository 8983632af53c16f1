"""Writing files so that nothing a user has is ever half-written: a temporary name, then a rename.

The temporary file is in the same directory (the rename is atomic on one filesystem) and has a
unique name (concurrent writers, e.g. sweep jobs, never share it); it is removed if writing fails.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` (parents created) via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike[str], obj: Any, **dumps_kwargs: Any) -> Path:
    """``json.dumps(obj, indent=2, **dumps_kwargs)`` written with :func:`write_text_atomic`."""
    return write_text_atomic(path, json.dumps(obj, **{"indent": 2, **dumps_kwargs}) + "\n")


def append_json_records(path: str | os.PathLike[str], records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Append ``records`` to the JSON list in ``path`` (created if missing); returns the whole list.

    Benchmark results accumulate this way: every run adds its records, none is rewritten.
    """
    path = Path(path)
    all_records = (json.loads(path.read_text()) if path.exists() else []) + list(records)
    write_json_atomic(path, all_records)
    return all_records
