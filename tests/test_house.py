"""The house rules, checked over the whole tree (docs/architecture.md): one name per idea in every
public signature, no function shadowing its own subpackage, memory measured in one place, one
at-exit registry, notebooks on the public API only,
docstrings that cite only what is in the repository."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path

import pytest

import llamalab

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "llamalab"
CODE = sorted([*LIB.rglob("*.py"), *(ROOT / "widgets").rglob("*.py")])

# a synonym that must not come back → the one name the kit uses for the idea
SYNONYMS = {
    "max_tokens": "max_new_tokens",
    "ctx": "context",
    "n_ctx": "context",
    "out": "output",
    "utilisation": "utilization",
    "cancel": "stop",
    "unload_adapter": "remove_adapters",
    "summary": "summarize (a function) / .summary (a DataFrame attribute)",
}


def public_callables():
    """(qualified name, callable) for every public function and class of llamalab's public surface,
    and every public method of those classes."""
    import llamalab.widgets

    seen = {}
    for module in (llamalab, llamalab.widgets):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                seen[f"{module.__name__}.{name}"] = obj
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if not attr.startswith("_") and inspect.isfunction(member):
                        seen[f"{module.__name__}.{name}.{attr}"] = member
    return seen


def parameter_names(obj) -> set[str]:
    names = set()
    if dataclasses.is_dataclass(obj):
        names |= {f.name for f in dataclasses.fields(obj)}
    try:
        names |= set(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        pass
    return names


def test_no_public_signature_uses_a_retired_synonym():
    found = []
    for qualname, obj in public_callables().items():
        short = qualname.rsplit(".", 1)[-1]
        found += [f"{qualname}: {short} → {SYNONYMS[short]}"] if short in SYNONYMS else []
        fields = (
            {f.name for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else set()
        )
        found += [
            f"{qualname}({p}) → {SYNONYMS[p]}"
            for p in parameter_names(obj)
            if p in SYNONYMS and not (p == "summary" and p in fields)
        ]  # a result's summary table is the one meaning
    assert not found, "\n".join(found)


def test_the_check_sees_a_synonym():
    def probe(prompt, max_tokens=8):
        pass

    assert "max_tokens" in parameter_names(probe) and "max_tokens" in SYNONYMS


def test_every_device_parameter_defaults_to_auto():
    wrong = []
    for qualname, obj in public_callables().items():
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            continue
        p = params.get("device")
        if (
            p is not None
            and p.default is not inspect.Parameter.empty
            and p.default not in ("auto", None)
        ):
            wrong.append(f"{qualname}(device={p.default!r})")
    assert not wrong, wrong


def test_catalog_listings_are_dataframes():
    import pandas as pd

    for listing in (
        llamalab.models,
        llamalab.schemes,
        llamalab.gpus,
        llamalab.capabilities,
        llamalab.training_capabilities,
        llamalab.providers,
    ):
        assert isinstance(listing(), pd.DataFrame), listing.__name__


def test_no_function_shadows_its_own_subpackage():
    shadowed = []
    packages = ["llamalab"] + [
        i.name for i in pkgutil.walk_packages([str(LIB)], "llamalab.") if i.ispkg
    ]
    for name in packages:
        package = importlib.import_module(name)
        for sub in pkgutil.iter_modules(package.__path__):
            if sub.name.startswith("_"):  # __main__ runs the command line; _server_main a server
                continue
            module = importlib.import_module(f"{name}.{sub.name}")
            if getattr(package, sub.name) is not module:
                shadowed.append(f"{name}.{sub.name}")
    assert not shadowed, shadowed


MEMORY_READS = re.compile(
    r"memory_info\(|VmHWM:|max_memory_allocated|memory_allocated\(|memory_reserved\(|"
    r"mem_get_info|virtual_memory\(|ru_maxrss|getrusage"
)


def test_memory_is_read_in_two_files():
    """Usage is read by the one probe (core/memory.py), capacity by core/hardware.py; the quantize
    worker's getrusage reads CPU time and page faults, not memory."""
    readers = {p.relative_to(ROOT).as_posix() for p in CODE if MEMORY_READS.search(p.read_text())}
    assert readers <= {
        "llamalab/core/memory.py",
        "llamalab/core/hardware.py",
        "llamalab/quantization/worker.py",
    }, readers
    worker = (LIB / "quantization" / "worker.py").read_text()
    assert "ru_maxrss" not in worker and "memory.peak_bytes()" in worker


def test_one_at_exit_registry():
    registering = [
        p.relative_to(ROOT).as_posix() for p in CODE if "atexit.register" in p.read_text()
    ]
    assert registering == ["llamalab/core/tasks.py"], registering


INTERNAL = (
    re.compile(r"(from|import) llamalab\.[a-z_]+\.[a-z_]+"),
    re.compile(
        r"from llamalab\.(core|catalog|plan|engines|runtime|quantization|measure|train|serving)"
        r"[.a-z_]* import"
    ),
)
COURSE_CODE = sorted((ROOT / "notebooks").rglob("*.ipynb")) + [ROOT / "binder" / "postBuild"]


def _code(path):
    if path.suffix != ".ipynb":
        return path.read_text()
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("path", COURSE_CODE, ids=lambda p: p.name)
def test_the_course_and_binder_use_the_public_api_only(path):
    code = _code(path)
    bad = [line for line in code.splitlines() if any(r.search(line) for r in INTERNAL)]
    assert not bad, bad

    used = re.findall(r"\bllamalab\.([a-z]\w*)", code) + [
        f"{mod}.{name.strip()}"
        for mod, names in re.findall(r"from llamalab(\.\w+)? import ([\w, ]+)", code)
        for name in names.split(",")
    ]
    missing = [n for n in used if not _resolves(n.lstrip("."))]
    assert not missing, f"{path.name} uses names llamalab does not have: {missing}"


def _resolves(dotted: str) -> bool:
    """`a.b.c` (an `x as y` import reads as x) is an attribute or a submodule of llamalab."""
    obj = llamalab
    for part in dotted.split(" as ")[0].split("."):
        try:
            found = hasattr(obj, part)
            obj = getattr(obj, part) if found else importlib.import_module(f"{obj.__name__}.{part}")
        except (ImportError, AttributeError):
            return False
    return True


CITES = re.compile(r"\bissue \d+|\(H\d\)|shared/research|research/[a-z-]+\.md|\.\./shared")


def test_docstrings_and_comments_cite_only_what_is_in_the_repository():
    bad = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in CODE
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if CITES.search(line)
    ]
    assert not bad, "\n".join(bad)


def test_python_version_is_one_promise():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.11"' in pyproject and "tomli" not in pyproject
    assert (ROOT / "binder" / "runtime.txt").read_text().strip().startswith("python-3.11")
