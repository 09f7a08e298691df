"""Every course notebook in a real JupyterLab, driven in headless chromium: Run All, no error
output, every widget and figure rendered, the kernel under mybinder's 2 GB (lab_run.RunAll).

This *is* the course's execution in a full test run, and Binder's: JupyterLab and its kernels run
from the venv that binder/ builds (tests/binder_venv.py), each notebook once.
tests/test_notebooks.py and tests/test_binder.py check the records instead of executing again (they
fall back to nbclient when these tests do not run: no chromium, `-m "not browser"`, or a file
selection without tests/browser). 05_widget_tour runs in tests/browser/test_lab.py instead, whose
later steps drive its widgets.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_run import RunAll

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.binder]
pytest.importorskip("playwright.sync_api")

OWN_BROWSER_TEST = {"05_widget_tour.ipynb": "test_lab.py"}
COURSE = [
    p.name
    for p in sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
    if p.name not in OWN_BROWSER_TEST
]


@pytest.mark.timeout(
    2400
)  # 02 quantizes GPTQ and AWQ unless an earlier run cached them (~5 min quiet)
@pytest.mark.parametrize("name", COURSE)
def test_run_all_in_jupyterlab_no_errors_every_widget_rendered(lab, page, name, artifacts):
    run = RunAll(lab, page, name).start()
    try:
        record = run.wait()
        assert record["kernel_python"].startswith(str(lab.bin.parent)), record[
            "kernel_python"
        ]  # Binder's venv
        assert not record["killed_at_cap"], (
            f"{name} passed {run.cap / 2**30:.0f} GiB of RSS (mybinder's cap)"
        )
        assert not record["errors"], "\n".join(record["errors"])
        rich = run.rendered()
        bad = [o for o in rich if not o["drawn"] or o["loading"] or o["error"]]
        assert not bad, f"outputs not rendered: {bad}"
        assert not any("Error displaying widget" in e for e in page.console_errors), (
            page.console_errors
        )
        page.screenshot(path=str(artifacts / f"lab_{Path(name).stem}.png"), full_page=True)
    finally:
        run.shut_down()


def test_the_check_sees_an_error_an_unrendered_widget_and_a_rendered_one(lab, page):
    """The checks above can fail: a probe notebook with a widget and a figure that render, a widget
    view whose model does not exist, and a cell that raises (Run All stops there:
    the last cell never runs)."""
    import nbformat

    cells = [
        "import ipywidgets, plotly.graph_objects as go\nipywidgets.IntSlider(3)",
        "go.Figure(go.Bar(y=[1, 2])).show()",
        (
            "display({'application/vnd.jupyter.widget-view+json': {'model_id': 'no-such-model', "
            "'version_major': 2, 'version_minor': 0}}, raw=True)"
        ),
        "raise ValueError('probe')",
        "print('never runs')",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, lab.root / "probe.ipynb")
    run = RunAll(lab, page, "probe.ipynb", timeout=120, course=False).start()
    try:
        record = run.wait()
        assert (
            len(record["errors"]) == 1
            and "ValueError" in record["errors"][0]
            and not record["killed_at_cap"]
        )
        assert record["peak_rss_bytes"] > 20e6
        rich = run.rendered(timeout_ms=10_000)
        assert len(rich) == 3
        assert [o["drawn"] for o in rich if o["kind"] == "plotly"] == [True]
        widgets = sorted(
            (o["drawn"], o["loading"] or o["error"]) for o in rich if o["kind"] == "widget"
        )
        assert widgets == [(False, True), (True, False)], rich
    finally:
        run.shut_down()
