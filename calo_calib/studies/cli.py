"""Command lines of the studies: their own options are ``conf/<study>.yaml``, composed by Hydra.

Every study takes ``key=value`` arguments. Those whose key is a top-level key of ``conf/<study>.yaml``
(exactly, no dots) are the study's own options and are composed with Hydra in struct mode. Studies
that train or simulate (``pass_through=True``) hand every other argument on, unchanged, as overrides
of ``conf/run.yaml`` or ``conf/simulate.yaml``, whose composition rejects an unknown key by name; the
others reject it here. Errors leave as ``SystemExit("<study>: error: ...")``.

``python -m calo_calib.studies.<study> --help`` prints the module docstring and the study config.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from omegaconf import DictConfig, OmegaConf

HELP_FLAGS = ("-h", "--help")


def compose_study_config(name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``conf/<name>.yaml`` with Hydra overrides (struct mode: an unknown key raises), through
    the one composer :func:`calo_calib.config.compose`."""
    from calo_calib.config import compose

    return compose(name, overrides)


def option_names(name: str) -> list[str]:
    """The top-level keys of ``conf/<name>.yaml``: the study's own options."""
    return [str(k) for k in compose_study_config(name).keys()]


def legacy_list(arg: str) -> str:
    """``key=a,b`` -> ``key=[a,b]``: the comma-separated form the scripts accepted (Hydra reads it as a sweep)."""
    key, _, value = arg.partition("=")
    if "," in value and not value.startswith(("[", "'", '"')):
        return f"{key}=[{value}]"
    return arg


def split_arguments(
    argv: Sequence[str], own: Sequence[str], list_keys: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """(the study's own overrides, every other argument), in command-line order.

    An argument is the study's own when the text before its first ``=`` is in ``own``; the values
    of ``list_keys`` may be written ``a,b`` as well as ``[a,b]``.
    """
    mine: list[str] = []
    rest: list[str] = []
    for arg in argv:
        key = arg.partition("=")[0]
        if key in own:
            mine.append(legacy_list(arg) if key in list_keys else arg)
        else:
            rest.append(arg)
    return mine, rest


def as_list(value: Any) -> list[str]:
    """A list option given as a list, as ``a,b`` or as one name -> list of non-empty names."""
    if value is None:
        return []
    if isinstance(value, str):
        items = value.strip("[]").split(",")
    else:
        items = [str(v) for v in value]
    return [v.strip() for v in items if v.strip()]


@contextmanager
def study_errors(name: str, handed_to: str | None = None) -> Iterator[None]:
    """Turn configuration errors (Hydra's, OmegaConf's, ConfigError) into ``SystemExit("<name>: error: ...")``.

    ``handed_to`` (e.g. ``"conf/run.yaml"``): where the study hands the other arguments; an unknown
    key's message then says that it is an option of neither config.
    """
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from calo_calib.simulation.material import ConfigError

    try:
        yield
    except (HydraException, OmegaConfBaseException, ConfigError) as err:
        text = str(err)
        if handed_to and text.startswith("Could not override"):
            text += f"\n(neither an option of conf/{name}.yaml {option_names(name)} nor a key of {handed_to})"
        raise SystemExit(f"{name}: error: {text}") from None


def parse_command_line(
    name: str, doc: str | None, argv: Sequence[str] | None, *, pass_through: bool, list_keys: Sequence[str] = ()
) -> tuple[DictConfig, list[str]]:
    """(composed ``conf/<name>.yaml``, the arguments handed on) from a study's command line.

    ``argv`` defaults to ``sys.argv[1:]``; ``--help`` prints ``doc`` and the config and exits 0.
    Without ``pass_through`` an argument that is not an option of the study is an error naming it.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in HELP_FLAGS for a in argv):
        print((doc or "").strip() + f"\n\nOptions (conf/{name}.yaml):\n")
        print(OmegaConf.to_yaml(compose_study_config(name)))
        raise SystemExit(0)
    own = option_names(name)
    mine, rest = split_arguments(argv, own, list_keys)
    if rest and not pass_through:
        keys = [a.partition("=")[0] for a in rest]
        raise SystemExit(
            f"{name}: error: bad argument(s) {rest}: unknown key(s) {keys}; options of conf/{name}.yaml: {own}"
        )
    with study_errors(name):
        return compose_study_config(name, mine), rest
