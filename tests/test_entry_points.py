"""The ``python -m calo_calib.<cmd>`` modules are thin (compose or parse, call a library function,
print), and the library never imports them: library code lives in the packages under ``calo_calib/``.
Checked on the source files with :mod:`ast`, nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "calo_calib"
ENTRY_MODULES = ("run", "simulate", "make_data", "validate", "predict", "export", "convert", "compare", "pileup_study")
MAX_LINES = 80


def _imported_modules(tree: ast.AST) -> set[str]:
    """Every module an ``import``/``from ... import`` anywhere in ``tree`` names (lazy imports included);
    ``from calo_calib import run`` counts as ``calo_calib.run``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("cmd", ENTRY_MODULES)
def test_entry_module_is_thin(cmd):
    path = PACKAGE / f"{cmd}.py"
    assert path.is_file(), f"{path} missing: `python -m calo_calib.{cmd}` is documented"
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.name} has {n} lines (> {MAX_LINES}): move its library code into a package"


def test_no_package_module_imports_an_entry_module():
    entry = {f"calo_calib.{cmd}" for cmd in ENTRY_MODULES}
    offenders = []
    for path in sorted(PACKAGE.glob("*/**/*.py")):
        bad = sorted(_imported_modules(ast.parse(path.read_text(), filename=str(path))) & entry)
        if bad:
            offenders.append(f"{path.relative_to(PACKAGE.parent)}: {', '.join(bad)}")
    assert not offenders, "library modules importing an entry module:\n" + "\n".join(offenders)


def test_the_check_sees_lazy_and_from_package_imports():
    tree = ast.parse("def f():\n    from calo_calib.run import main\n\nfrom calo_calib import simulate\n")
    assert {"calo_calib.run", "calo_calib.simulate"} <= _imported_modules(tree)
