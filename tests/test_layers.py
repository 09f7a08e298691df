"""The floors of the house are enforced: import-linter's contract (pyproject.toml) holds, an upward
import breaks it, and nothing in llamalab/ imports the widgets (which import-linter cannot see)."""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")
UI = ("llamalab.widgets", "widgets", "ipywidgets", "anywidget")


FLOORS = (
    "widgets",
    "cli",
    "workshop",
    "course",
    "plots",
    "train",
    "serving",
    "measure",
    "quantization",
    "runtime",
    "engines",
    "plan",
    "catalog",
    "data",
    "core",
)


def lint(cwd: Path, config: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    assert LINT.exists(), f"{LINT} missing: pip install -e '.[test]' installs import-linter"
    return subprocess.run(
        [str(LINT), "--no-cache", str(config)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_the_import_contracts_hold_and_name_every_folder():
    r = lint(ROOT, ROOT / "pyproject.toml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 kept, 0 broken" in r.stdout
    contract = re.search(
        r"^\[tool\.importlinter\].*", (ROOT / "pyproject.toml").read_text(), re.S | re.M
    ).group(0)
    folders = {p.name for p in (ROOT / "llamalab").iterdir() if (p / "__init__.py").is_file()}
    assert folders == set(FLOORS) - {"widgets", "cli"}, (
        folders
    )  # every folder is a floor (cli.py is a module)
    named = set(re.findall(r"llamalab\.(\w+)", contract.split("layers = [")[1].split("]")[0]))
    assert named == set(FLOORS) | {"__main__"}, named


def test_an_upward_import_breaks_the_contract(tmp_path):
    """The same contract over a copy of the package where the catalog (ground floor)
    imports measure."""
    shutil.copytree(
        ROOT / "llamalab", tmp_path / "llamalab", ignore=shutil.ignore_patterns("__pycache__")
    )
    catalog = tmp_path / "llamalab" / "catalog" / "__init__.py"
    catalog.write_text(
        catalog.read_text() + "\n\ndef _upward():\n    from ..measure import compare  # noqa\n"
    )
    config = tmp_path / "pyproject.toml"
    config.write_text(
        re.search(
            r"^\[tool\.importlinter\].*", (ROOT / "pyproject.toml").read_text(), re.S | re.M
        ).group(0)
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}  # the copy, not the installed package
    r = lint(tmp_path, config, env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "BROKEN" in r.stdout and "llamalab.catalog -> llamalab.measure" in r.stdout, r.stdout


def _imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """Every module `path` imports, anywhere in it (inside functions too),
    relative imports resolved."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            out += [(node.lineno, f"{base}.{a.name}" if base else a.name) for a in node.names]
    return out


def test_the_library_never_imports_the_widgets():
    """widgets/ is installed as llamalab.widgets by a package-dir mapping, outside the folder
    import-linter reads, so the contract cannot see it: this check does."""
    bad = [
        f"{p.relative_to(ROOT)}:{line}: {name}"
        for p in sorted((ROOT / "llamalab").rglob("*.py"))
        for line, name in _imports(p)
        if name.split(".")[0] in UI or name.startswith(UI[0])
    ]
    assert not bad, "llamalab/ must not import the UI layer:\n" + "\n".join(bad)


def test_the_widget_check_sees_relative_and_function_level_imports(tmp_path):
    probe = tmp_path / "llamalab" / "runtime" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "def f():\n    from ..widgets import arena  # noqa\n    import ipywidgets  # noqa\n"
    )
    assert [n for _, n in _imports(probe, tmp_path)] == ["llamalab.widgets.arena", "ipywidgets"]


@pytest.mark.parametrize("module", ["llamalab.widgets"])
def test_widgets_are_outside_what_import_linter_reads(module):
    """Documents why the check above exists: grimp builds its graph from the llamalab/ folder
    only."""
    import grimp

    graph = grimp.build_graph("llamalab", cache_dir=None)
    assert module not in graph.modules
