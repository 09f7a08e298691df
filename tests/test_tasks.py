"""The one lifecycle for long work (llamalab/core/tasks.py): thread tasks, and process tasks against
real subprocesses (tests/tasks_worker.py): states, events, log tail, atomic output, errors, stop by
PID, the registry at exit. A process task is a Python start (~1 s here), no model. Driven by events,
not sleeps."""

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from llamalab import InvalidSetting, TaskFailed, TaskStopped
from llamalab.core import tasks

ENV = {"PYTHONPATH": str(Path(__file__).parent)}


def start(function, **kw):
    """A process task running tests/tasks_worker.py's `function`."""
    return tasks.start_process(f"tasks_worker:{function}", env=ENV, **kw)


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
    assert leftovers(tmp_path) == ["out"]  # no temp sibling left
    assert "step 2 of 3" in job.tail() and not job.workdir.exists()


def test_module_target_with_args_and_a_progress_bar(capsys):
    job = tasks.start_process("tasks_worker", 4, env=ENV, progress=True)
    assert job.wait(timeout=60) == {"total": 4}
    assert job.tail() == "plain stdout line"  # non-event stdout goes to the log
    assert "4/4" in capsys.readouterr().err  # tqdm's bar on stderr


def test_failure_keeps_no_output_and_shows_the_log_tail(tmp_path):
    job = start("crash", kwargs={"lines": 60}, output=tmp_path / "out", tail_lines=20)
    with pytest.raises(TaskFailed) as e:
        job.wait(timeout=60)
    assert "exit code 1" in e.value.message and "RuntimeError: the worker broke" in e.value.message
    assert (
        "log line 59" in e.value.log_tail and "log line 10" not in e.value.log_tail
    )  # last 20 lines only
    assert leftovers(tmp_path) == [] and job.state == "failed"
    log = job.log_path.read_text()  # the full log stays for the error to point at
    assert "log line 0" in log and str(job.log_path) in e.value.fix
    shutil.rmtree(job.workdir)


def test_the_kits_error_in_the_worker_comes_back_as_itself():
    job = start("refuse")
    with pytest.raises(InvalidSetting, match="samples=0") as e:
        job.wait(timeout=60)
    assert e.value.fix == "Use samples ≥ 1." and "RuntimeWarning" not in job.log_path.read_text()
    shutil.rmtree(job.workdir)


def test_a_worker_that_reports_no_result_fails():
    job = tasks.start_process("tasks_worker", 0, env={**ENV, "TASKS_WORKER_SILENT": "1"})
    with pytest.raises(TaskFailed, match="no result reported"):
        job.wait(timeout=60)
    shutil.rmtree(job.workdir)


@pytest.mark.parametrize("ignore_term", [False, True])
def test_stop_kills_the_process_group_and_leaves_nothing(tmp_path, ignore_term):
    pids, reported = [], threading.Event()

    def on_event(e):
        if e["event"] == "pids":
            pids.append(e["child"])
            reported.set()

    job = start(
        "hang", kwargs={"ignore_term": ignore_term}, output=tmp_path / "out", on_event=on_event
    )
    assert reported.wait(60) and any(
        p.name.startswith(".out-") for p in tmp_path.iterdir()
    )  # work in progress
    job.stop(grace=1.0)
    with pytest.raises(TaskStopped):
        job.wait(60)
    assert gone(job.pid) and gone(pids[0]) and not job.running and job.state == "stopped"
    assert leftovers(tmp_path) == [] and not job.workdir.exists()


def test_stop_after_the_end_changes_nothing(tmp_path):
    job = start("count", kwargs={"n": 1}, output=tmp_path / "out")
    job.wait(timeout=60)
    job.stop()
    assert job.state == "done" and (tmp_path / "out" / "result.txt").is_file()


def test_replace_swaps_an_older_output_only_on_success(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    job = start("crash", kwargs={"lines": 1}, output=tmp_path / "out", replace=True)
    with pytest.raises(TaskFailed):
        job.wait(timeout=60)
    shutil.rmtree(job.workdir)
    assert leftovers(tmp_path / "out") == ["old.txt"]
    start("count", kwargs={"n": 1}, output=tmp_path / "out", replace=True).wait(timeout=60)
    assert leftovers(tmp_path / "out") == ["result.txt"]


def test_a_bad_target_is_refused_before_spawning():
    with pytest.raises(InvalidSetting, match="target"):
        tasks.start_process("not a module; rm -rf /")
    with pytest.raises(InvalidSetting, match="kwargs"):
        tasks.start_process("tasks_worker", kwargs={"n": 1})


def test_an_unknown_function_fails_with_the_import_error_in_the_tail():
    job = start("nope")
    with pytest.raises(TaskFailed, match="AttributeError"):
        job.wait(timeout=60)
    shutil.rmtree(job.workdir)


def test_a_function_worker_ends_with_its_parent(tmp_path):
    """A kernel restart kills the notebook's process: the task it started must not keep running."""
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys; from llamalab.core import tasks\n"
                f"job = tasks.start_process('tasks_worker:hang', env={ENV!r}, "
                f"output={str(tmp_path / 'out')!r})\n"
                "print(job.pid, job.workdir, flush=True); job.wait()"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    worker, workdir = parent.stdout.readline().split()
    worker = int(worker)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 20
    while not gone(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(worker)
    shutil.rmtree(workdir)  # nobody was left to clean it


def test_the_registry_stops_what_is_left_at_exit(tmp_path):
    """A process that exits with a task still running (a notebook closed mid-work)
    leaves nothing behind."""
    code = (
        "from llamalab.core import tasks\n"
        f"job = tasks.start_process('tasks_worker:hang', env={ENV!r}, "
        f"output={str(tmp_path / 'out')!r})\n"
        "import threading; seen = threading.Event()\n"
        "job.on_event(lambda e: e['event'] == 'pids'"
        " and (print(job.pid, e['child'], flush=True), seen.set()))\n"
        "seen.wait(60)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    worker, child = map(int, out.stdout.split())
    assert gone(worker) and gone(child)


# ---------------------------------------------------------------- thread tasks


def test_a_thread_task_reports_events_and_its_result():
    seen = []

    def work(task, n):
        for i in range(n):
            task.progress(i + 1, n, f"step {i + 1}")
        task.log("a log line")
        return n * 2

    task = tasks.start_thread(work, 3, label="demo", on_event=seen.append)
    assert task.wait(30) == 6 and task.state == "done" and not task.running
    assert (
        [e["done"] for e in seen] == [1, 2, 3] and task.fraction == 1.0 and task.message == "step 3"
    )
    assert task.tail() == "a log line" and task not in tasks.running()


def test_a_thread_task_stops_at_its_next_check_and_keeps_what_it_returned():
    checked = threading.Event()

    def work(task):
        steps = 0
        while not task.stopping:
            steps += 1
            checked.set()
            task.stop_event.wait(0.01)
        return steps

    task = tasks.start_thread(work)
    assert checked.wait(30) and task in tasks.running()
    task.stop()
    with pytest.raises(TaskStopped):
        task.wait(30)
    assert task.state == "stopped" and task.result >= 1 and task.join(0)


def test_a_thread_tasks_error_is_raised_by_wait_and_on_end_sees_it():
    ended = []

    def work(task):
        raise ValueError("broken")

    task = tasks.start_thread(work, on_end=ended.append)
    with pytest.raises(ValueError, match="broken"):
        task.wait(30)
    assert task.state == "failed" and ended == [task] and isinstance(task.error, ValueError)


def test_anyof_and_deadline_stop_events():
    a, b = threading.Event(), threading.Event()
    either = tasks.AnyOf(a, b)
    assert not either.is_set()
    b.set()
    assert either.is_set()
    past = tasks.Deadline(time.perf_counter() - 1)
    assert past.is_set() and not tasks.Deadline(time.perf_counter() + 60).is_set()
