"""The room's JupyterHub on this machine (`serve_hub`): a real JupyterHub with
configurable-http-proxy on 127.0.0.1, the room password, one learner's server in its cgroup — a
cell runs there with the room's environment, memory past the limit is killed by the kernel, CPU past
the quota is throttled, the shared cache is read-only — and nothing left running after stop(). One
hub per module.
Notebook 00 in room mode runs in the learner's server here; eight learners at once (and five
loading their own model) are benchmarks/hub_room.py."""

from __future__ import annotations

from pathlib import Path

import nbformat
import psutil
import pytest

from llamalab.core.container import own_group
from llamalab.runtime.room import Room
from llamalab.workshop.hub import HubError, hub_config, parse_bytes
from llamalab.workshop.hub_client import run_notebook

MEMORY = 512 * 2**20  # a Jupyter server + kernel peak at ~170 MB here


def test_limits_are_read_as_jupyterhub_reads_them():
    assert parse_bytes("2G") == 2 * 2**30 and parse_bytes("1536M") == 1536 * 2**20
    assert parse_bytes(MEMORY) == MEMORY
    for bad in ("lots", "10M", "-1G"):
        with pytest.raises(HubError, match="2G"):
            parse_bytes(bad)


def test_the_config_binds_loopback_and_is_never_an_open_hub(tmp_path):
    pytest.importorskip("jupyterhub")
    ports = {"public": 8000, "api": 8001, "hub": 8081}
    text = hub_config(tmp_path, tmp_path / "cache", "127.0.0.1", ports, "p", MEMORY, 0.5)
    assert "c.JupyterHub.bind_url = 'http://127.0.0.1:8000'" in text
    assert "'shared-password'" in text and "secret['password']" in text  # no password in the file
    assert f"c.Spawner.mem_limit = {MEMORY}" in text and "c.Spawner.cpu_limit = 0.5" in text
    assert f"read_only_paths = ['{tmp_path / 'cache'}', '/sys/fs/cgroup']" in text
    assert f"'LLAMALAB_SHARED_CACHE': '{tmp_path / 'cache'}'" in text  # LLAMALAB_CACHE: per learner


@pytest.fixture(scope="module")
def hub():
    pytest.importorskip("jupyterhub", reason='the hub extra is missing: pip install -e ".[hub]"')
    from llamalab.workshop.hub import proxy_command, serve_hub
    from llamalab.workshop.hub_client import HubClient

    try:
        proxy_command()
    except HubError as e:
        pytest.skip(e.fix)
    if own_group("memory") is None:
        pytest.skip("no cgroup v1 memory hierarchy here: the hub's spawner needs one")
    room = Room("http://127.0.0.1:9", "room-token")  # the variable's way in; its use: benchmark
    h = serve_hub(memory=MEMORY, cpus=1.0, room=room, password="room-password-1")
    client = HubClient(h.url, h.api_token)
    try:
        client.create_users(["ada"])
        client.start_server("ada")
        yield h, client, client.token_for("ada")
    finally:
        pids = [h.task.pid, *h.group("ada").pids(), _proxy_pid(h.folder)]
        h.stop()
    alive = [
        p for p in pids if p and psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
    ]
    assert not alive, f"left running: {alive}"
    assert not h.group("ada").memory_dir.exists() and not h.folder.exists()  # its temp folder too


def _proxy_pid(folder: Path) -> int | None:
    try:
        return int((folder / "proxy.pid").read_text())
    except (OSError, ValueError):
        return None


def _cell(hub, code: str):
    from llamalab.workshop.hub_client import run_code

    h, _, token = hub
    return run_code(h.url, "ada", token, code)


@pytest.mark.slow
@pytest.mark.server
def test_the_room_password_signs_in_and_nothing_else_does(hub):
    h, client, _ = hub
    assert client.login("ada", "room-password-1")
    assert not client.login("ada", "wrong-password")
    assert h.url.startswith("http://127.0.0.1:")
    listening = {c.laddr.ip for c in psutil.net_connections("tcp") if c.status == "LISTEN"
                 and c.laddr.port == int(h.url.rsplit(":", 1)[1])}  # fmt: skip
    assert listening == {"127.0.0.1"}


@pytest.mark.slow
@pytest.mark.server
def test_a_cell_runs_in_the_learners_cgroup_with_the_rooms_environment(hub):
    h, _, _ = hub
    code = ("import os\nenv = [os.environ[k] for k in ('LLAMALAB_ROOM', 'LLAMALAB_SHARED_CACHE', "
            "'LLAMALAB_CACHE', 'HOME')]\n"
            "print(*env, open('/proc/self/cgroup').read().replace(chr(10), ' '))")  # fmt: skip
    run = _cell(hub, code)
    assert not run.errors, run.errors
    room, shared, cache, home, cgroups = run.stdout.split(" ", 4)
    assert room == "http://127.0.0.1:9#token=room-token"
    assert shared == str(h.cache) and home == str(h.folder / "users" / "ada")
    assert cache == str(h.folder / "users" / "ada" / ".cache" / "llamalab")
    assert f"memory:/{h.group('ada').memory_dir.relative_to(_v1('memory'))}" in cgroups
    group = h.group("ada")
    assert int((group.memory_dir / "memory.limit_in_bytes").read_text()) == MEMORY
    assert int((group.cpu_dir / "cpu.cfs_quota_us").read_text()) == 100_000  # 1.0 CPU
    assert 50e6 < group.peak_bytes() < MEMORY  # the server and its kernel, under the limit


@pytest.mark.slow
@pytest.mark.server
def test_memory_past_the_limit_is_killed_by_the_kernel(hub):
    group = hub[0].group("ada")
    before = group.oom_kills()
    run = _cell(hub, f"block = b'x' * {MEMORY + 100 * 2**20}")  # written, so resident
    assert run.kernel_died and run.errors[0].startswith("kernel ")
    assert group.oom_kills() > before
    after = _cell(hub, "print(1 + 1)")  # the server lives on: a new kernel, not the one restarting
    assert after.stdout.strip() == "2", after.errors


@pytest.mark.slow
@pytest.mark.server
def test_a_silent_kernel_ends_at_the_time_limit_despite_the_servers_pings(hub):
    """The server pings each websocket every 30 s; a receive that answered pings itself never
    timed out on a cell that stays silent (a CI run hung here 900 s)."""
    from llamalab.workshop.hub_client import run_code

    h, _, token = hub
    run = run_code(h.url, "ada", token, "import time\ntime.sleep(120)", timeout=35)
    assert run.errors == ["cell 1 still running at the notebook's time limit"]
    assert 35 <= run.wall_s < 45


@pytest.mark.slow
@pytest.mark.server
def test_cpu_past_the_quota_is_throttled(hub):
    # The spawner's 1-CPU quota is checked above; a busy box (other jobs on its 2 cores) may never
    # give the group a whole CPU, so the kernel's enforcement is shown at a quota it surely reaches.
    group = hub[0].group("ada")
    quota = group.cpu_dir / "cpu.cfs_quota_us"
    before, kept = group.throttled_periods(), quota.read_text()
    busy = (
        "import time\nt, c = time.time(), time.process_time()\n"
        "while time.time() - t < 1.0: pass\nprint(time.process_time() - c, time.time() - t)"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in ("pass", busy)])
    nb.metadata["llamalab_name"] = "busy.ipynb"
    h, _, token = hub
    throttle = lambda n: quota.write_text("5000") if n == 2 else None  # 0.05 CPU, kernel up
    try:
        run = run_notebook(h.url, "ada", token, nb, timeout=120, before_cell=throttle)
    finally:
        quota.write_text(kept)
    cpu_s, wall_s = map(float, run.stdout.split())
    assert not run.errors
    assert group.throttled_periods() > before
    assert cpu_s < 0.05 * wall_s * 2  # a busy loop wants a whole CPU; a twentieth is granted


@pytest.mark.slow
@pytest.mark.server
def test_the_shared_cache_is_read_only_to_learners(hub):
    h = hub[0]
    code = ("import os\nfrom llamalab.runtime.files import embedded\nprint(embedded.model_dir())\n"
            "os.makedirs(os.environ['LLAMALAB_CACHE'])\n"
            "open(os.path.join(os.environ['LLAMALAB_CACHE'], 'mine'), 'w').write('x')\n"
            "open(os.path.join(os.environ['LLAMALAB_SHARED_CACHE'], 'mine'), 'w')")  # fmt: skip
    run = _cell(hub, code)
    assert run.stdout.strip() == str(h.cache / "smollm2-135m-instruct")  # pre-built: read in place
    assert run.errors and "Read-only file system" in run.errors[0]
    assert not (h.cache / "mine").exists()
    assert (h.folder / "users" / "ada" / ".cache" / "llamalab" / "mine").read_text() == "x"
    # nor can a learner (root here) lift its own limits
    group = h.group("ada")
    limit = group.memory_dir / "memory.limit_in_bytes"
    run = _cell(hub, f"open({str(limit)!r}, 'w').write('-1')")
    assert run.errors and "Read-only file system" in run.errors[0]
    assert int(limit.read_text()) == MEMORY


def _v1(controller: str) -> Path:
    return Path("/sys/fs/cgroup") / controller


@pytest.mark.slow
@pytest.mark.server
def test_notebook_00_runs_in_room_mode_in_a_learners_server(hub, room_server):
    """Notebook 00 as a learner opens it on the hub, its kernel in the learner's cgroup, with the
    session's room server as LLAMALAB_ROOM (set in the kernel, in place of the hub's placeholder):
    it completes under the limit, its kernel never imports torch, and the room answered."""
    import json

    h, _, token = hub
    group, predicted = h.group("ada"), "llamacpp:tokens_predicted_total"
    kills, before = group.oom_kills(), room_server.server.metrics()[predicted]
    nb = nbformat.read(Path(__file__).parent.parent / "notebooks" / "00_quickstart.ipynb", 4)
    line = room_server.room.line().split("=", 1)[1]
    report = ("import json, sys\nprint(json.dumps({'torch': 'torch' in sys.modules, "
              "'device': m.device, 'tokens': g.new_tokens + final.new_tokens}))")  # fmt: skip
    nb.cells = [nbformat.v4.new_code_cell(f"import os\nos.environ['LLAMALAB_ROOM'] = {line!r}"),
                *nb.cells, nbformat.v4.new_code_cell(report)]  # fmt: skip
    nb.metadata["llamalab_name"] = "00_quickstart.ipynb"
    run = run_notebook(h.url, "ada", token, nb, timeout=240)
    assert not run.errors, run.errors
    kernel = json.loads(run.stdout.strip().splitlines()[-1])
    assert kernel["torch"] is False and kernel["device"] == "remote"
    assert room_server.server.metrics()[predicted] - before >= kernel["tokens"] > 0
    assert group.oom_kills() == kills  # within the learner's 512 MiB
