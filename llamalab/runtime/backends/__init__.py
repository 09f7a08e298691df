"""One module per scheme backend. Each has `available(device) -> (ok, reason)` and
`load(path, scheme, device, **options) -> Engine`; which backend serves which scheme on which
device is data (catalog/schemes.toml)."""
from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from ...errors import BackendMissing


def module(name: str) -> ModuleType | None:
    """The backend module, or None if this version of llamalab has no loader for it yet."""
    if importlib.util.find_spec(f"{__name__}.{name}") is None:
        return None
    return importlib.import_module(f"{__name__}.{name}")


def availability(name: str, device: str) -> tuple[bool, str]:
    mod = module(name)
    if mod is None:
        return False, f"no {name} loader in this version of llamalab (the estimator still knows the scheme)"
    return mod.available(device)


def require(package: str, install: str, why: str = "") -> None:
    """Raise BackendMissing with the exact install command if `package` is not importable."""
    if importlib.util.find_spec(package) is None:
        raise BackendMissing(package, install, why)


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None
