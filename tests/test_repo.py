"""Repository-level contracts: README set-up commands, CI script, config directory."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from calo_calib.paths import CONF_DIR

ROOT = Path(__file__).resolve().parent.parent
SETUP_COMMANDS = ["make install", "make test"]


def _fenced_blocks(text: str) -> list[list[str]]:
    """Non-empty lines of each fenced code block of a Markdown text, in order."""
    return [
        [line.strip() for line in body.splitlines() if line.strip()]
        for body in re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    ]


def _ci_commands() -> list[str]:
    """Non-comment, non-empty lines of ``.ci/run``."""
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_readme_opens_with_setup_commands() -> None:
    text = (ROOT / "README.md").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("# "), "README must start with a title"
    # The first fenced block comes right after the title and one sentence (within the first lines)
    # and contains exactly the set-up commands.
    first_fence = next(i for i, line in enumerate(lines) if line.startswith("```"))
    assert first_fence <= 5, "the set-up command block must open the README"
    assert _fenced_blocks(text)[0] == SETUP_COMMANDS


def test_ci_runs_readme_commands_in_order() -> None:
    readme_cmds = _fenced_blocks((ROOT / "README.md").read_text())[0]
    ci_lines = _ci_commands()
    positions = []
    for cmd in readme_cmds:
        pattern = re.compile(rf"(^|[\s;&|(]){re.escape(cmd)}($|[\s;&|)])")
        hits = [i for i, line in enumerate(ci_lines) if pattern.search(line)]
        assert hits, f".ci/run does not run the README command {cmd!r}"
        positions.append(hits[0])
    assert positions == sorted(positions), ".ci/run must run the README commands in README order"


def test_ci_script_is_executable() -> None:
    ci = ROOT / ".ci" / "run"
    assert ci.read_text().startswith("#!"), ".ci/run needs a shebang"
    assert os.stat(ci).st_mode & stat.S_IXUSR, ".ci/run must be executable (chmod +x)"
    assert "set -euo pipefail" in ci.read_text()


def test_conf_dir_has_simulate_config() -> None:
    assert CONF_DIR.is_absolute()
    assert (CONF_DIR / "simulate.yaml").is_file(), f"simulate.yaml missing from {CONF_DIR}"
