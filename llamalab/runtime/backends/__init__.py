"""Scheme backends: one small module per scheme family, registered under the entry-point group
`llamalab.backends` (this package's own in pyproject.toml; a third-party package adds its own the
same way, as `llm` plugins do), or at run time with `register_backend` (tests, notebooks).

A backend is any module or object with
  REQUIRES: {device kind: [(package, install command), ...]}   what must be importable
  available(device) -> (ok, reason)                            can it run here, and why not
  load(path, scheme, device, trust_remote_code=False, **options)
      -> an llamalab.runtime.Engine subclass
and optionally NEEDS_FILES = False (it finds no checkpoint: a remote server, a test's fake engine).
Which backend serves which scheme on which device is data (catalog/schemes.toml); a plugin brings
its own schemes with `register_backend(name, backend, scheme=Scheme(...))` or a SCHEMES list.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from importlib.metadata import entry_points

from ... import catalog
from ...catalog import Scheme
from ...core.errors import BackendMissing, InvalidSetting

GROUP = "llamalab.backends"
CONTRACT = ("REQUIRES", "available", "load")

_backends: dict[str, object] = {}
_served: dict[str, list[str]] = {}  # backend → the plugin schemes it brought


def register_backend(name: str, backend, scheme: Scheme | None = None) -> None:
    """Make `backend` (module or object) serve `name`; its SCHEMES (and `scheme`)
    join the catalog's."""
    missing = [a for a in CONTRACT if not hasattr(backend, a)]
    if missing:
        raise InvalidSetting(
            f"Backend {name!r} lacks {', '.join(missing)}.",
            "A backend defines REQUIRES, "
            "available(device) and load(path, scheme, device, **options).",
        )
    _backends[name] = backend
    for s in [*getattr(backend, "SCHEMES", ()), *([scheme] if scheme else [])]:
        catalog.register_scheme(s)
        _served.setdefault(name, []).append(s.name)


def unregister_backend(name: str) -> None:
    """Forget a backend registered at run time, and the schemes it brought
    (tests clean up with it)."""
    _backends.pop(name, None)
    for s in _served.pop(name, []):
        catalog.unregister_scheme(s)


def module(name: str):
    """The backend serving `name`: registered at run time, else from the entry-point group."""
    if name not in _backends:
        found = entry_points(group=GROUP, name=name)
        if not found:
            raise InvalidSetting(
                f"No backend called {name!r} is installed.",
                f"Known backends: {', '.join(names())}. Reinstall llamalab (pip install -e .) "
                "if a built-in one is missing: backends are found through its entry points.",
            )
        register_backend(name, next(iter(found)).load())
    return _backends[name]


def names() -> list[str]:
    """Every backend name: the entry-point group's and those registered at run time."""
    return sorted(_installed(tuple(sys.path)) | set(_backends))


@functools.lru_cache(maxsize=4)
def _installed(path: tuple[str, ...]) -> frozenset[str]:
    """The entry-point group's names, read once per sys.path (a scan of every installed
    distribution: tens of ms, and the catalog asks on every plugin-scheme lookup)."""
    return frozenset(ep.name for ep in entry_points(group=GROUP))


def _load_all() -> dict[str, Scheme]:
    """Load every installed backend once, so the schemes plugins bring are registered
    (a catalog hook)."""
    for name in names():
        module(name)
    return {}


catalog.add_scheme_source(_load_all)


def availability(name: str, device: str) -> tuple[bool, str]:
    return module(name).available(device)


def require(package: str, install: str, why: str = "") -> None:
    """Raise BackendMissing with the exact install command if `package` is not importable."""
    if importlib.util.find_spec(package) is None:
        raise BackendMissing(package, install, why)


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def missing(requires: dict, device: str) -> str:
    """'' when every package the backend needs on `device` is importable,
    else a reason with the command."""
    needed = requires.get(device.split(":")[0], ())
    absent = [(p, cmd) for p, cmd in needed if not installed(p)]
    if not absent:
        return ""
    verb = "is" if len(absent) == 1 else "are"
    return f"{' and '.join(p for p, _ in absent)} {verb} not installed ({absent[0][1]})"
