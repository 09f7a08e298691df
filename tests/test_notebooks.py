"""The course notebooks: stored clean, and each runs top to bottom offline (its own asserts are the
checks).

Each notebook is executed once per test run: where the browser tests already ran it in a real
JupyterLab (tests/browser/test_course.py and test_lab.py, collected and run before this file), their
record is checked here; otherwise (no chromium, `-m "not browser"`, this file alone)
nbclient executes it.
"""

import json
import sys
from pathlib import Path

import pytest
from notebook_run import CAP_BYTES, executed, run_notebook, save

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert any(p.name.startswith("00_quickstart") for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs_or_widget_state(path):
    nb = json.loads(path.read_text())
    assert "widgets" not in nb.get("metadata", {})
    for cell in nb["cells"]:
        assert "id" in cell, cell["source"][:80]  # nbformat 4.5: every cell has an id
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell.get("execution_count") is None, cell["source"][
                :80
            ]


@pytest.mark.slow
@pytest.mark.timeout(
    2400
)  # 02 quantizes GPTQ and AWQ unless tests/quant already cached them (~5 min quiet)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_offline_within_2_gb(path):
    """Each notebook top to bottom in a fresh kernel, its own asserts the checks, its memory under
    mybinder's 2 GB (test-artifacts/notebooks.json records wall time, peak and runner)."""
    record = executed(path.name)
    if record is None:
        record = run_notebook(sys.executable, path)
        save("notebooks", [record])
    assert not record["errors"], record["errors"]
    assert not record["killed_at_cap"], (
        f"{path.name} passed {CAP_BYTES / 2**30:.0f} GiB of RSS (mybinder's cap)"
    )
