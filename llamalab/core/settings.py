"""Settings are dataclasses whose fields carry their help text (peft's style), so `help()`, the CLI
and the widgets show the same words:

    @dataclass(frozen=True)
    class QuantizeSettings:
        bits: int | None = setting(None, "Bits per weight ...")

    help_of(QuantizeSettings, "bits")     # the sentence
    describe(QuantizeSettings)             # every field: name, default, help
    with_changes(QuantizeSettings(), group_size=64)   # unknown names raise InvalidSetting
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
from typing import Any

from .errors import InvalidSetting

__all__ = [
    "add_arguments",
    "describe",
    "from_arguments",
    "help_of",
    "names",
    "setting",
    "with_changes",
]


def setting(default: Any, help: str, **metadata) -> Any:
    """A dataclass field with its help text (and any other metadata, e.g. which methods use it)."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(
            default_factory=lambda: type(default)(default), metadata={"help": help, **metadata}
        )
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


def names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def help_of(cls, name: str) -> str:
    """The help sentence of one field."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.metadata.get("help", "")
    raise _unknown(cls, name)


def describe(cls) -> str:
    """One block per field — `name = default` then its help — for docstrings,
    `--help` and widget tooltips."""
    out = []
    for f in dataclasses.fields(cls):
        factory = f.default_factory
        default = factory() if f.default is dataclasses.MISSING and callable(factory) else f.default
        out.append(f"{f.name} = {default!r}\n    {f.metadata.get('help', '')}")
    return "\n".join(out)


def with_changes(base, **changes):
    """A copy of the settings object `base` with `changes`; a name it does not have
    raises InvalidSetting."""
    for name in changes:
        if name not in names(type(base)):
            raise _unknown(type(base), name)
    return dataclasses.replace(base, **changes)


def _unknown(cls, name: str) -> InvalidSetting:
    close = difflib.get_close_matches(name, names(cls), n=2)
    hint = f"Did you mean {' or '.join(close)}? " if close else ""
    return InvalidSetting(
        f"Unknown setting {name!r} for {cls.__name__}.", f"{hint}Known: {', '.join(names(cls))}."
    )


def add_arguments(parser, cls) -> None:
    """One `--name` option per field of `cls`, with the field's help (so `--help` shows
    the same words)."""
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kind = str(f.type)
        help_text = f.metadata.get("help", "").replace("%", "%%")
        if "bool" in kind:
            parser.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                flag,
                dest=f.name,
                default=None,
                help=help_text,
                type=int if "int" in kind else float if "float" in kind else str,
            )


def from_arguments(cls, namespace) -> dict:
    """The fields of `cls` that were given on the command line (the rest keep their defaults)."""
    return {
        name: getattr(namespace, name)
        for name in names(cls)
        if getattr(namespace, name, None) is not None
    }
