"""The Binder environment, built the way repo2docker builds it: a fresh venv from
binder/requirements.txt, then binder/postBuild. The course's notebooks run in it (tests/browser:
JupyterLab and its kernels start from this venv), so the Binder run *is* the course run and no
notebook executes twice in a test run.

Reused across runs (pip's cache makes a rebuild quick; postBuild skips what LLAMALAB_CACHE already
holds): LLAMALAB_BINDER_VENV moves it.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("LLAMALAB_BINDER_VENV", Path.home() / ".cache" / "llamalab-binder-venv"))


def env(venv: Path = VENV) -> dict:
    """The environment of a process in the venv (as if activated), offline."""
    return dict(
        os.environ,
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        VIRTUAL_ENV=str(venv),
        HF_HUB_OFFLINE="1",
    )


@functools.cache
def build(venv: Path = VENV) -> Path:
    """The venv, built or brought up to date once per test run: requirements.txt, then postBuild."""
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    # --retries 0: where PyTorch's CPU index is unreachable (an offline CI), pip takes this
    # machine's torch from its cache or find-links at once instead of retrying the index for every
    # package. ipykernel and nbclient: repo2docker's base environment has them;
    # a bare venv does not.
    subprocess.run(
        [
            py,
            "-m",
            "pip",
            "install",
            "-q",
            "--retries",
            "0",
            "--timeout",
            "10",
            "-r",
            "binder/requirements.txt",
            "nbclient",
            "ipykernel",
        ],
        cwd=ROOT,
        env=env(venv),
        check=True,
        timeout=1800,
    )
    subprocess.run(["bash", "binder/postBuild"], cwd=ROOT, env=env(venv), check=True, timeout=1800)
    return venv
