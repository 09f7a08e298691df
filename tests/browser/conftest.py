"""A throw-away JupyterLab (127.0.0.1, token, temp dirs)
driven by Debian chromium through Playwright.

Harness from /work/shared/research/jupyter-testing.md (pitfalls P3–P7 handled here). The lab, the
browser and the page live for one test module (the browser tests are one workshop in one file) and
are stopped when it ends, not at the end of the whole run: a kernel holding the model (~1 GB) and
Chromium would otherwise take memory and CPU from every later test. Everything is stopped by PID:
the server with SIGTERM (which shuts its kernels down) then SIGKILL, and any kernel it left behind
the same way; a last check fails the module if any process started here is still alive. Screenshots
of failures and timings go to test-artifacts/.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from notebook_run import checks_env

from llamalab.core import paths

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
VENV_BIN = Path(sys.executable).parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMINGS: dict[str, float] = {}


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"chromium not found at {CHROMIUM} (apt-get install chromium; CI has it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return (
            "the playwright Python package is not installed "
            "(pip install playwright; never `playwright install`)"
        )
    if not (VENV_BIN / "jupyter-lab").exists():
        return f"jupyter-lab not found next to {sys.executable}"
    return None


RUNS_COURSE = (
    "test_course.py",
    "test_lab.py",
)  # their Run All is the course's execution in a test run


def _course_runs_first(items) -> None:
    """The browser modules that execute the course go before tests/test_notebooks.py, which then
    reuses their records instead of executing a notebook twice (pytest's own order already does
    this; an explicit file order on the command line might not). Each module keeps its tests'
    order."""
    runs = [i for i in items if i.path.name in RUNS_COURSE]
    first = next((k for k, i in enumerate(items) if i.path.name == "test_notebooks.py"), None)
    if runs and first is not None and items.index(runs[-1]) > first:
        rest = [i for i in items if i.path.name not in RUNS_COURSE]
        at = rest.index(items[first])
        items[:] = rest[:at] + runs + rest[at:]


def pytest_collection_modifyitems(config, items):
    _course_runs_first(items)
    reason = _missing()
    if reason is None:
        return
    banner = f"\n{'!' * 78}\n!! BROWSER TESTS SKIPPED: {reason}\n{'!' * 78}\n"
    sys.stderr.write(banner)
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=f"BROWSER TESTS SKIPPED: {reason}"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    proc: subprocess.Popen
    log: Path
    bin: Path = VENV_BIN  # the venv the server and its kernels run from

    @property
    def binder(self) -> bool:
        return self.bin != VENV_BIN

    def open_url(self, path: str) -> str:
        return f"{self.url}/lab/tree/{path}?token={self.token}&reset"


def _kill(p, grace: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL — one process we started (a psutil.Process: its PID,
    checked against reuse)."""
    import psutil

    try:
        p.send_signal(signal.SIGTERM)
        p.wait(grace)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        p.kill()
        p.wait(5)


def _stop_lab(lab: Lab) -> None:
    """SIGTERM lets jupyter_server shut its kernels down (retried once, P8); SIGKILL last; then any
    kernel process it started that is still alive is stopped by its PID."""
    import psutil

    kids = psutil.Process(lab.proc.pid).children(recursive=True)
    for _ in range(2):
        lab.proc.terminate()
        try:
            lab.proc.wait(timeout=15)
            break
        except subprocess.TimeoutExpired:
            pass
    else:
        lab.proc.kill()
        lab.proc.wait()
    for kid in kids:
        _kill(kid)


def _lab_env(base: Path, bin_dir: Path) -> dict:
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(base / "cfg"),
        JUPYTER_RUNTIME_DIR=str(base / "rt"),
        JUPYTERLAB_SETTINGS_DIR=str(base / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(base / "ws"),
        JUPYTER_DATA_DIR=str(base / "data"),
        IPYTHONDIR=str(base / "ipython"),
        PYTHONUNBUFFERED="1",
        TMPDIR=str(base / "tmp"),
        HF_HUB_OFFLINE="1",
        LLAMALAB_SOLUTIONS="1",  # the exercises answered from the course's answer key: all checked
        **checks_env(),  # each self-check recorded: the claims table's test (test_notebooks.py)
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        VIRTUAL_ENV=str(bin_dir.parent),
    )
    env["LLAMALAB_CACHE"] = str(paths.cache_dir())  # the kernel reuses the tests' converted model
    (base / "tmp").mkdir(parents=True)
    notif = base / "settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
    notif.parent.mkdir(parents=True)
    notif.write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )  # P7: no news toast
    # Every cell in the DOM (JupyterLab 4 skips rendering off-screen cells by default), so the tests
    # see all widgets, as a learner scrolling through the notebook would.
    tracker = base / "settings/@jupyterlab/notebook-extension/tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    return env


@pytest.fixture(scope="module", autouse=True)
def nothing_left_running():
    """Fails the module if a process started during it (JupyterLab, its kernels, Playwright's
    driver, Chromium; all descend from this pytest process) outlives it. Autouse, so it is set up
    before the lab and the browser and torn down after them. A straggler is killed (by PID)
    and reported."""
    import psutil

    seen: dict[int, psutil.Process] = {}
    yield seen
    left = _still_running(list(seen.values()))
    for proc in left:
        _kill(proc, grace=2)
    TIMINGS["processes_left_after_browser_tests"] = len(left)
    assert not left, (
        f"still running after the browser tests (now killed): {[_describe(p) for p in left]}"
    )


@pytest.fixture(autouse=True)
def _record_started_processes(nothing_left_running):
    """After each test, note every descendant of this process (the lab's kernels start mid-test)."""
    import psutil

    yield
    for proc in psutil.Process().children(recursive=True):
        nothing_left_running.setdefault(proc.pid, proc)


def _still_running(procs: list, wait: float = 5.0) -> list:
    """The processes still alive after up to `wait` s (a zombie has exited;
    psutil checks PID reuse)."""
    import psutil

    deadline = time.time() + wait
    while True:
        alive = []
        for p in procs:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.time() > deadline:
            return alive
        time.sleep(0.2)


def _describe(proc) -> str:
    try:
        return f"{proc.pid} {' '.join(proc.cmdline())[:120]}"
    except Exception:
        return str(proc.pid)


@pytest.fixture(scope="module")
def lab_bin(request) -> Path:
    """Where jupyter-lab and its kernels' python come from: this venv, or for modules marked
    `binder` (the course's run, which is also Binder's) the Binder venv (tests/binder_venv.py,
    built once per test run)."""
    if request.node.get_closest_marker("binder"):
        from binder_venv import build

        return build() / "bin"
    return VENV_BIN


@pytest.fixture(scope="module")
def lab(lab_bin):
    base = Path(tempfile.mkdtemp(prefix="llamalab-lab-"))
    root = base / "root"
    shutil.copytree(REPO / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    port, token = _free_port(), "llamalab-browser-test"
    cmd = [
        str(lab_bin / "jupyter-lab"),
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--LabApp.expose_app_in_browser=True",
    ]  # P4: window.jupyterapp
    log = base / "server.log"
    t0 = time.perf_counter()
    with open(log, "w") as out:  # the server keeps its own copy of the descriptor
        proc = subprocess.Popen(
            cmd, env=_lab_env(base, lab_bin), stdout=out, stderr=subprocess.STDOUT, cwd=root
        )
    lab = Lab(f"http://127.0.0.1:{port}", token, root, proc, log, lab_bin)
    try:
        _wait_ready(lab)
        TIMINGS["lab_server_start_s"] = round(time.perf_counter() - t0, 2)
        yield lab
    finally:
        _stop_lab(lab)
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(log, ARTIFACTS / "lab-server.log")
        shutil.rmtree(base, ignore_errors=True)


def _wait_ready(lab: Lab, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if lab.proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited: {lab.log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{lab.url}/api/status?token={lab.token}", timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"jupyter lab not ready after {timeout} s: {lab.log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def timings() -> dict:
    """Measured wall times, written to test-artifacts/timings.json at the end of the session."""
    return TIMINGS


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        t0 = time.perf_counter()
        b = p.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )  # P5: no --user-data-dir
        TIMINGS["chromium_launch_s"] = round(time.perf_counter() - t0, 2)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def page(browser):
    """One page for the whole module: the tests walk through the notebook in order,
    as a learner would."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1100})
    pg = ctx.new_page()
    pg.console_errors = []
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text[:500]))
    yield pg
    ctx.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    rep = (yield).get_result()
    if rep.when == "call" and rep.failed and "page" in getattr(item, "funcargs", {}):
        ARTIFACTS.mkdir(exist_ok=True)
        errors = item.funcargs["page"].console_errors
        (ARTIFACTS / f"FAILED_{item.name}.console.txt").write_text("\n".join(errors))
        try:
            item.funcargs["page"].screenshot(
                path=str(ARTIFACTS / f"FAILED_{item.name}.png"), full_page=True
            )
        except Exception as e:
            sys.stderr.write(f"screenshot failed: {e}\n")


def pytest_sessionfinish(session):
    if TIMINGS:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / "timings.json"
        old = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**old, **TIMINGS}, indent=1))
