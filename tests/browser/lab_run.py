"""Run All of one notebook in the real JupyterLab (the `lab` and `page` fixtures of conftest.py),
the way tests/notebook_run.py runs it with nbclient: the kernel's process tree under mybinder's 2 GB
RSS watchdog, wall time and peak recorded (test-artifacts/notebooks.json, runner "jupyterlab"; also
binder.json when the lab runs from the Binder venv), and the record kept for tests/test_notebooks.py
and tests/test_binder.py so that no notebook is executed twice in one test run.

Checked from the notebook *model* (every code cell ran, no error output) and from the DOM (every
widget and plotly output rendered: no "Loading widget...", no "Error displaying widget",
something drawn).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request

from notebook_run import CAP_BYTES, Watchdog, forget_checks, remember, save

KERNEL_READY = """() => {
    const k = window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel;
    return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""
# From the notebook model, not the DOM: every code cell has an execution count.
ALL_CELLS_RAN = """() => {
    const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
    let n = 0;
    for (let i = 0; i < cells.length; i++) {
        const c = cells.get(i);
        if (c.type === 'code') { if (!c.executionCount) return false; n++; }
    }
    return n > 0;
}"""
ERROR_OUTPUTS = """() => {
    const cells = window.jupyterapp.shell.currentWidget.content.model.cells, errors = [];
    for (let i = 0; i < cells.length; i++) {
        const c = cells.get(i);
        if (c.type !== 'code') continue;
        for (let j = 0; j < c.outputs.length; j++) {
            const o = c.outputs.get(j);
            if (o.type === 'error') errors.push(JSON.stringify(o.toJSON()).slice(0, 1500));
        }
    }
    return errors;
}"""
# Where Run All stands: cells that ran, errors (Run All stops at the first), the kernel's status.
PROGRESS = """() => {
    const w = window.jupyterapp.shell.currentWidget, cells = w.content.model.cells;
    let code = 0, ran = 0, errors = 0;
    for (let i = 0; i < cells.length; i++) {
        const c = cells.get(i);
        if (c.type !== 'code') continue;
        code++; if (c.executionCount) ran++;
        for (let j = 0; j < c.outputs.length; j++) if (c.outputs.get(j).type === 'error') errors++;
    }
    const k = w.sessionContext?.session?.kernel;
    return {code, ran, errors, kernel: k ? k.status : 'none'};
}"""
# Every output of the notebook model that needs a renderer (widget views, plotly figures), with what
# its node in the page shows: drawn (a widget view / an SVG inside), or still "Loading widget...",
# or an error.
RENDERED = """() => {
    const kinds = {
        'application/vnd.jupyter.widget-view+json': 'widget',
        'application/vnd.plotly.v1+json': 'plotly'
    };
    const nb = window.jupyterapp.shell.currentWidget.content, out = [];
    for (let i = 0; i < nb.model.cells.length; i++) {
        const c = nb.model.cells.get(i);
        if (c.type !== 'code') continue;
        for (let j = 0; j < c.outputs.length; j++) {
            const mime = Object.keys(c.outputs.get(j).data || {}).find(m => m in kinds);
            if (!mime) continue;
            const kind = kinds[mime], area = nb.widgets[i].outputArea.node;
            const node = area.children[j]?.querySelector('.jp-OutputArea-output');
            const text = node?.innerText || '';
            const drawing = kind === 'plotly' ? '.main-svg' : '.lm-Widget';
            out.push({cell: i, kind, drawn: !!node && !!node.querySelector(drawing),
                      loading: text.includes('Loading widget'),
                      error: text.includes('Error displaying widget')});
        }
    }
    return out;
}"""


def kernel_idle(page, timeout=120_000):
    page.wait_for_function(KERNEL_READY, timeout=timeout, polling=100)


def menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{top}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{item}$")).click()


def _api(lab, path: str, method: str = "GET"):
    req = urllib.request.Request(
        f"{lab.url}{path}", method=method, headers={"Authorization": f"token {lab.token}"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
    return json.loads(body) if body else None


def session_of(lab, name: str) -> dict:
    """The Jupyter server's session for notebook `name` (its kernel id)."""
    sessions = [s for s in _api(lab, "/api/sessions") if s["path"].endswith(name)]
    assert len(sessions) == 1, f"expected one session for {name}: {sessions}"
    return sessions[0]


def kernel_process(lab, kernel_id: str):
    """The kernel's process: the lab server's child started with kernel-<id>.json as its connection
    file."""
    import psutil

    for p in psutil.Process(lab.proc.pid).children(recursive=True):
        try:
            if any(f"kernel-{kernel_id}.json" in a for a in p.cmdline()):
                return p
        except psutil.Error:
            continue
    raise AssertionError(f"no process of kernel {kernel_id} under the lab server {lab.proc.pid}")


class RunAll:
    """Open `name`, Run All Cells under the RSS watchdog, wait until every cell ran (or one failed,
    or the watchdog killed the kernel); `record` is notebook_run's record with runner "jupyterlab"
    (saved and remembered unless `course` is False)."""

    def __init__(
        self, lab, page, name: str, timeout: float = 2400, cap: int = CAP_BYTES, course: bool = True
    ):
        self.lab, self.page, self.name, self.timeout, self.cap, self.course = (
            lab,
            page,
            name,
            timeout,
            cap,
            course,
        )
        self.record: dict = {}

    def start(self) -> RunAll:
        if self.course:  # this run's self-checks replace the notebook's older records
            forget_checks(self.name)
        t0 = time.perf_counter()
        self.page.goto(self.lab.open_url(self.name))
        kernel_idle(self.page)  # P4: the indicator says idle before a kernel exists
        self.open_s = time.perf_counter() - t0
        self.session = session_of(self.lab, self.name)
        self.kernel = kernel_process(self.lab, self.session["kernel"]["id"])
        self.kernel_python = self.kernel.cmdline()[0]
        self.dog = Watchdog(self.kernel.pid, self.cap)
        self.dog.start()
        self.t0 = time.perf_counter()
        menu(self.page, "Run", "Run All Cells")
        return self

    def wait(self) -> dict:
        """Poll until done; the record (also saved and remembered for tests/test_notebooks.py)."""
        deadline, state = self.t0 + self.timeout, {}
        while time.perf_counter() < deadline and not self.dog.killed:
            state = self.page.evaluate(PROGRESS)
            if state["kernel"] == "idle" and (state["ran"] == state["code"] or state["errors"]):
                break
            if state["kernel"] == "dead":
                break
            time.sleep(0.5)
        wall = time.perf_counter() - self.t0
        self.dog.done.set()
        errors = [] if self.dog.killed else self.page.evaluate(ERROR_OUTPUTS)
        if not self.dog.killed and state.get("ran") != state.get("code") and not errors:
            errors = [f"Run All did not finish in {self.timeout:.0f} s: {state}"]
        self.record = {
            "notebook": self.name,
            "runner": "jupyterlab",
            "venv": "binder" if self.lab.binder else "project",
            "kernel_python": self.kernel_python,
            "peak_rss_bytes": self.dog.peak,
            "killed_at_cap": self.dog.killed,
            "wall_s": wall,
            "open_to_kernel_idle_s": self.open_s,
            "errors": errors,
        }
        if self.course:  # not the tests' own probe notebooks
            save("notebooks", [self.record])
            if self.lab.binder:
                save("binder", [self.record])
            remember(self.record)
        return self.record

    def rendered(self, timeout_ms: float = 60_000) -> list[dict]:
        """Every widget/plotly output, once all are drawn (or after `timeout_ms`): [{cell, kind,
        drawn, loading, error}]."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        with contextlib.suppress(
            PlaywrightTimeout
        ):  # the caller asserts on what is there and says what is missing
            self.page.wait_for_function(
                f"() => ({RENDERED})().every(o => o.drawn && !o.loading && !o.error)",
                timeout=timeout_ms,
                polling=250,
            )
        return self.page.evaluate(RENDERED)

    def shut_down(self) -> None:
        """The kernel is shut down through the server's API (as closing the notebook would),
        and is gone."""
        import psutil

        try:
            _api(self.lab, f"/api/sessions/{self.session['id']}", method="DELETE")
        finally:
            try:
                self.kernel.wait(30)
            except psutil.TimeoutExpired:
                self.kernel.kill()
            except psutil.NoSuchProcess:
                pass
