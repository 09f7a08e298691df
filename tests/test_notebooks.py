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
from guide_claims import rows, unproven
from notebook_run import (
    CAP_BYTES,
    checks,
    executed,
    forget_checks,
    remember,
    run_notebook,
    save,
)

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
    record = run_once(path)
    assert not record["errors"], record["errors"]
    assert not record["killed_at_cap"], (
        f"{path.name} passed {CAP_BYTES / 2**30:.0f} GiB of RSS (mybinder's cap)"
    )


def run_once(path: Path) -> dict:
    """The record of `path`'s run in this test run: the browser tests' if they ran it, else an
    nbclient run now (remembered, so it is not run twice)."""
    record = executed(path.name)
    if record is None:
        record = run_notebook(sys.executable, path)
        save("notebooks", [record])
        remember(record)
    return record


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_every_asserted_guide_claim_was_checked_and_held_in_this_run():
    """docs/guide-claims.md's `asserted` rows: each one's `expect(...)` ran in its notebook in this
    run and held (from the checks expect() recorded: notebook_run.CHECKS). A row whose check was
    skipped, renamed or failed fails here (tests/test_guide_claims.py probes that this can fail)."""
    claims = [r for r in rows() if r["status"] == "asserted"]
    for name in sorted({Path(r["notebook"]).name for r in claims}):
        run_once(Path(__file__).parent.parent / "notebooks" / name)
    problems = unproven(claims, checks())
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_a_probe_notebooks_checks_are_recorded_and_a_failed_one_is_named(tmp_path):
    """The records path end to end, in a real kernel: expect() in a notebook run by run_notebook
    appends its checks under the notebook's name, and a ✗ makes its claim unproven."""
    import nbformat

    name = "probe_guide_claims.ipynb"
    cells = [
        "from llamalab.course import expect",
        "expect(1 + 1 == 2, 'a probe check that holds')",
        "expect(1 + 1 == 3, 'a probe check that fails')",
    ]
    nbformat.write(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]),
        tmp_path / name,
    )
    try:
        record = run_notebook(sys.executable, tmp_path / name, solutions=False)  # ✗ printed
        assert not record["errors"], record["errors"]
        got = [(c["what"], c["ok"]) for c in checks() if c["notebook"] == name]
        assert got == [("a probe check that holds", True), ("a probe check that fails", False)]
        claims = [
            {"n": n, "status": "asserted", "notebook": f"x/{name}", "marker": m}
            for n, m in (("1", "a probe check that holds"), ("2", "a probe check that fails"))
        ]
        assert unproven(claims, checks()) == [
            f"row 2: its check 'a probe check that fails' failed in {name}"
        ]
    finally:
        forget_checks(name)
