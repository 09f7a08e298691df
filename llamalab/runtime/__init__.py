"""The runtime: `load()` picks the backend for (scheme, device), checks the estimate fits, loads and
measures; `connect()` does the same for a model on a server. Both give a `LoadedModel`, whose
`generate()` measures every call."""

from .backends import register_backend
from .loaded import Generation, LiveStats, LoadedModel
from .loader import capabilities, check_scheme, load, resolve_device, runs
from .remote import ServedProcess, connect, served_models

__all__ = [
    "Generation",
    "LiveStats",
    "LoadedModel",
    "ServedProcess",
    "capabilities",
    "check_scheme",
    "connect",
    "load",
    "register_backend",
    "resolve_device",
    "runs",
    "served_models",
]
