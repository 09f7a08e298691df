"""The job runner against real subprocesses (tests/jobs_worker.py): events, log tail, atomic output,
errors, cancellation by PID. Each job is a Python start (~1 s here), no model."""
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from llamalab import jobs
from llamalab.errors import InvalidSetting, JobCancelled, JobFailed

ENV = {"PYTHONPATH": str(Path(__file__).parent)}


def start(function, **kw):
    """A job running tests/jobs_worker.py's `function`."""
    return jobs.start(f"jobs_worker:{function}", env=ENV, **kw)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_progress_events_result_and_atomic_output(tmp_path):
    seen = []
    job = start("count", kwargs={"n": 3}, output=tmp_path / "out", on_event=seen.append)
    assert job.pid and job.wait(timeout=60) == {"n": 3}
    assert [e["done"] for e in seen if e["event"] == "progress"] == [1, 2, 3]
    assert seen[-1] == {"event": "done", "n": 3} and job.events == seen
    assert job.fraction == 1.0 and job.message == "step 3" and job.state == "done"
    assert (tmp_path / "out" / "result.txt").read_text() == "3"
    assert leftovers(tmp_path) == ["out"]                       # no temp sibling left
    assert "step 2 of 3" in job.tail() and not job.workdir.exists()


def test_module_target_with_args_and_a_progress_bar(capsys):
    job = jobs.start("jobs_worker", 4, env=ENV, progress=True)
    assert job.wait(timeout=60) == {"total": 4}
    assert job.tail() == "plain stdout line"                     # non-event stdout goes to the log
    assert "4/4" in capsys.readouterr().err                     # tqdm's bar on stderr


def test_failure_keeps_no_output_and_shows_the_log_tail(tmp_path):
    job = start("crash", kwargs={"lines": 60}, output=tmp_path / "out", tail_lines=20)
    with pytest.raises(JobFailed) as e:
        job.wait(timeout=60)
    assert "exit code 1" in e.value.message and "RuntimeError: the worker broke" in e.value.message
    assert "log line 59" in e.value.log_tail and "log line 10" not in e.value.log_tail   # last 20 lines only
    assert leftovers(tmp_path) == [] and job.state == "failed"
    log = job.log_path.read_text()                               # the full log stays for the error to point at
    assert "log line 0" in log and str(job.log_path) in e.value.fix
    shutil.rmtree(job.workdir)


def test_the_kits_error_in_the_worker_comes_back_as_itself():
    job = start("refuse")
    with pytest.raises(InvalidSetting, match="samples=0") as e:
        job.wait(timeout=60)
    assert e.value.fix == "Use samples ≥ 1." and "RuntimeWarning" not in job.log_path.read_text()
    shutil.rmtree(job.workdir)


def test_a_worker_that_reports_no_result_fails():
    job = jobs.start("jobs_worker", 0, env={**ENV, "JOBS_WORKER_SILENT": "1"})
    with pytest.raises(JobFailed, match="no result reported"):
        job.wait(timeout=60)
    shutil.rmtree(job.workdir)


@pytest.mark.parametrize("ignore_term", [False, True])
def test_cancel_kills_the_process_group_and_leaves_nothing(tmp_path, ignore_term):
    pids = []
    job = start("hang", kwargs={"ignore_term": ignore_term}, output=tmp_path / "out",
                on_event=lambda e: pids.append(e["child"]) if e["event"] == "pids" else None)
    deadline = time.monotonic() + 60
    while not pids and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pids and any(p.name.startswith(".out-") for p in tmp_path.iterdir())   # work in progress
    t0 = time.monotonic()
    job.cancel(grace=1.0)
    assert time.monotonic() - t0 < 10
    assert gone(job.pid) and gone(pids[0]) and not job.running and job.state == "cancelled"
    assert leftovers(tmp_path) == [] and not job.workdir.exists()
    with pytest.raises(JobCancelled):
        job.wait()


def test_cancel_after_the_end_changes_nothing(tmp_path):
    job = start("count", kwargs={"n": 1}, output=tmp_path / "out")
    job.wait(timeout=60)
    job.cancel()
    assert job.state == "done" and (tmp_path / "out" / "result.txt").is_file()


def test_replace_swaps_an_older_output_only_on_success(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    job = start("crash", kwargs={"lines": 1}, output=tmp_path / "out", replace=True)
    with pytest.raises(JobFailed):
        job.wait(timeout=60)
    shutil.rmtree(job.workdir)
    assert leftovers(tmp_path / "out") == ["old.txt"]
    start("count", kwargs={"n": 1}, output=tmp_path / "out", replace=True).wait(timeout=60)
    assert leftovers(tmp_path / "out") == ["result.txt"]


def test_a_bad_target_is_refused_before_spawning():
    with pytest.raises(InvalidSetting, match="target"):
        jobs.start("not a module; rm -rf /")
    with pytest.raises(InvalidSetting, match="kwargs"):
        jobs.start("jobs_worker", kwargs={"n": 1})


def test_an_unknown_function_fails_with_the_import_error_in_the_tail():
    job = start("nope")
    with pytest.raises(JobFailed, match="AttributeError"):
        job.wait(timeout=60)
    shutil.rmtree(job.workdir)



def test_a_function_worker_ends_with_its_parent(tmp_path):
    """A kernel restart kills the notebook's process: the job it started must not keep running."""
    parent = subprocess.Popen([sys.executable, "-c", (
        "import sys; from llamalab import jobs\n"
        f"job = jobs.start('jobs_worker:hang', env={ENV!r}, output={str(tmp_path / 'out')!r})\n"
        "print(job.pid, job.workdir, flush=True); job.wait()")], stdout=subprocess.PIPE, text=True)
    worker, workdir = parent.stdout.readline().split()
    worker = int(worker)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 20
    while not gone(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(worker)
    shutil.rmtree(workdir)          # nobody was left to clean it
