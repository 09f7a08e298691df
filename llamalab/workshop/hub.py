"""The room's JupyterHub on one machine (`llamalab room hub`): JupyterHub with
configurable-http-proxy on 127.0.0.1 unless told, a shared room password (JupyterHub's
SharedPasswordAuthenticator), each learner's server in its own cgroup with enforced memory and CPU
limits and in its own folder, the pre-built model cache shared read-only (LLAMALAB_SHARED_CACHE)
beside a writable cache in each learner's folder (LLAMALAB_CACHE), and the room's model server
(LLAMALAB_ROOM) passed to every learner's kernel.

    with llamalab.workshop.serve_hub(memory="2G", cpus=1, room=room_server.room) as hub:
        print(hub.instructions())     # URL + the room password

It writes a jupyterhub_config.py into its folder (secrets beside it in a 0600 file), so the same hub
can be started again with `jupyterhub -f`. Upstream: JupyterHub's docs (authenticators, REST API,
spawners) and jupyterhub/configurable-http-proxy.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..core import tasks, validate
from ..core.errors import LlamalabError
from ..core.paths import atomic_dir
from ..core.units import both
from ..runtime.files import embedded
from ..runtime.room import Room
from ..serving.server import ANY_HOST, HOST, free_port
from .cgroups import LimitedGroup, existing_group
from .sandbox import read_only

SERVICE = "llamalab-room"  # the hub service whose admin token drives learners (benchmarks, tests)
HUB_EXTRA = 'pip install -e ".[hub]"'
PROXY_INSTALL = "npm install -g --prefix .venv configurable-http-proxy@5 (scripts/setup.sh does it)"
SCOPES = ["admin:users", "admin:servers", "tokens", "access:servers", "read:users"]


class HubError(LlamalabError):
    """The room's hub cannot start or does not answer."""


@dataclass
class Hub:
    """A running room hub: its URL, folder, limits and the admin token of its service. Stopped by
    stop(), the `with` block, or at interpreter exit (with every learner's server and the proxy)."""

    task: tasks.Task
    url: str
    folder: Path
    cache: Path
    memory_limit_bytes: int
    cpus: float
    group_prefix: str
    room: Room | None
    temporary: bool  # the folder was made for this hub: removed when it stops
    password: str = field(repr=False)
    api_token: str = field(repr=False)

    def group(self, user: str) -> LimitedGroup:
        """The cgroup of `user`'s server (its peak memory, OOM kills, throttled periods)."""
        return existing_group(f"{self.group_prefix}/{user}", self.memory_limit_bytes, self.cpus)

    def instructions(self) -> str:
        room = f"the room's model at {self.room.url}" if self.room else "local models (no room)"
        return "\n".join([
            f"Room hub: {self.url}/hub/login  (pid {self.task.pid}, folder {self.folder})",
            f"  Learners sign in with any name and the room password: {self.password}",
            f"  Each learner's server: {both(self.memory_limit_bytes)} memory, {self.cpus:g} CPU "
            "(cgroup limits the kernel enforces), its own folder (no system account).",
            f"  Shared model cache (read-only to learners): {self.cache}; each learner writes",
            f"  into their own: {self.folder / 'users' / '<name>' / '.cache' / 'llamalab'}",
            f"  Kernels use {room}.",
        ])  # fmt: skip

    def stop(self) -> None:
        """Stop every learner's server (through the hub), then the hub and its proxy."""
        if self.task.running:
            from .hub_client import HubClient

            try:
                HubClient(self.url, self.api_token).stop_all()
            except LlamalabError as e:
                self.task.log(f"stopping learners' servers through the hub: {e.message}")
            self.task.stop(grace=20)
            self.task.join(30)
        _end_proxy(self.folder / "proxy.pid")
        for leftover in _groups_under(self):
            leftover.remove()
        if self.temporary:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_hub(
    *,
    host: str = HOST,
    port: int = 0,
    password: str | None = None,
    memory: str | int = "2G",
    cpus: float = 1.0,
    room: Room | str | None = None,
    cache: str | Path | None = None,
    folder: str | Path | None = None,
    start_timeout: float = 60.0,
    spawn_timeout: float = 300.0,
) -> Hub:
    """Start the room's hub. host: 127.0.0.1 unless the educator names an address (0.0.0.0: the
    room's network). password: the room password (random unless given, ≥ 8 characters).
    memory/cpus: each learner's limits ("2G" = 2 GiB, as JupyterHub reads it). room: the room
    server (a Room or its LLAMALAB_ROOM line) every kernel uses. cache: the shared model cache
    (default: <folder>/cache, filled from this machine's cache). folder: the hub's state and
    learners' folders (default: a temporary folder, removed at stop()). start_timeout: seconds
    for the hub to answer; spawn_timeout: for a learner's server to start (minutes when many
    start at once on a busy machine)."""
    memory_bytes = parse_bytes(memory)
    validate.number("cpus", cpus, lo=0.05, hi=float(os.cpu_count() or 1))
    validate.number("spawn_timeout", spawn_timeout, lo=10)
    password = password or secrets.token_urlsafe(9)
    if len(password) < 8:
        raise HubError("The room password is shorter than 8 characters.", "Choose a longer one.")
    room = _room(room)
    _require_jupyterhub()
    temporary = folder is None
    folder = Path(folder or tempfile.mkdtemp(prefix="llamalab-hub-")).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    cache = share_cache(Path(cache) if cache else folder / "cache")
    _check_read_only(cache)
    ports = {"public": port or free_port(), "api": free_port(), "hub": free_port()}
    prefix = f"llamalab-hub-{ports['public']}-{secrets.token_hex(3)}"
    token = secrets.token_hex(32)
    line = room.line().split("=", 1)[1] if room else ""
    _write_secret(folder / "secrets.json", {"password": password, "api_token": token, "room": line})
    config = folder / "jupyterhub_config.py"
    config.write_text(
        hub_config(folder, cache, host, ports, prefix, memory_bytes, cpus, spawn_timeout)
    )
    task = tasks.start_process("jupyterhub", "-f", config, cwd=folder, label="jupyterhub")
    url = f"http://{_reach(host)}:{ports['public']}"
    hub = Hub(
        task, url, folder, cache, memory_bytes, cpus, prefix, room, temporary, password, token
    )
    try:
        _wait_up(hub, start_timeout)
    except BaseException:
        hub.stop()
        raise
    return hub


def hub_config(folder: Path, cache: Path, host: str, ports: dict, prefix: str,
               memory_bytes: int, cpus: float, spawn_timeout: float = 300.0) -> str:  # fmt: skip
    """The jupyterhub_config.py of a room hub (secrets read from secrets.json beside it)."""
    bin_dir = Path(sys.executable).parent
    env = {"HF_HUB_OFFLINE": "1", "LLAMALAB_SHARED_CACHE": str(cache)}  # + the spawner's own
    public, hub, api = (f"http://{h}:{ports[k]}" for h, k in
                        ((host, "public"), (HOST, "hub"), (HOST, "api")))  # fmt: skip
    db = f"sqlite:///{folder / 'jupyterhub.sqlite'}"
    root = os.geteuid() == 0
    lines = [
        "# The room's JupyterHub, written by llamalab (llamalab/workshop/hub.py).",
        f"# Start it again: cd {folder} && {bin_dir}/jupyterhub -f {folder}/jupyterhub_config.py",
        "import json, pathlib",
        "secret = json.loads(pathlib.Path(__file__).with_name('secrets.json').read_text())",
        f"c.JupyterHub.bind_url = {public!r}",
        f"c.JupyterHub.hub_bind_url = {hub!r}",
        f"c.ConfigurableHTTPProxy.api_url = {api!r}",
        f"c.ConfigurableHTTPProxy.command = [{str(proxy_command())!r}]",
        f"c.ConfigurableHTTPProxy.pid_file = {str(folder / 'proxy.pid')!r}",
        f"c.JupyterHub.db_url = {db!r}",
        f"c.JupyterHub.cookie_secret_file = {str(folder / 'cookie_secret')!r}",
        "c.JupyterHub.authenticator_class = 'shared-password'",
        "c.SharedPasswordAuthenticator.user_password = secret['password']",
        "c.Authenticator.allow_all = True  # anyone with the room password may sign in",
        "c.JupyterHub.spawner_class = 'llamalab.workshop.hub_spawner.RoomSpawner'",
        f"c.RoomSpawner.group_prefix = {prefix!r}",
        f"c.RoomSpawner.read_only_paths = [{str(cache)!r}, '/sys/fs/cgroup']  # limits stay",
        f"c.RoomSpawner.home_dir_template = {str(folder / 'users' / '{username}')!r}",
        f"c.Spawner.cmd = [{str(bin_dir / 'jupyterhub-singleuser')!r}]",
        "c.Spawner.default_url = '/lab'",
        *(["c.Spawner.args = ['--allow-root']  # learners share the hub's uid"] if root else []),
        f"c.Spawner.mem_limit = {memory_bytes}",
        f"c.Spawner.cpu_limit = {float(cpus)}",
        f"c.Spawner.start_timeout = c.Spawner.http_timeout = {int(spawn_timeout)}",
        f"c.Spawner.environment = {{**{env!r}, "
        "**({'LLAMALAB_ROOM': secret['room']} if secret['room'] else {})}",
        f"c.JupyterHub.services = [{{'name': {SERVICE!r}, 'api_token': secret['api_token']}}]",
        f"c.JupyterHub.load_roles = [{{'name': {SERVICE!r}, 'scopes': {SCOPES!r}, "
        f"'services': [{SERVICE!r}]}}]",
        "c.JupyterHub.cleanup_servers = True",
    ]
    return "\n".join(lines) + "\n"


def share_cache(cache: Path) -> Path:
    """The shared model cache, pre-built: the embedded model converted (copied from this
    machine's cache when it is there, else converted once); learners' servers see it through a
    read-only mount."""
    cache.mkdir(parents=True, exist_ok=True)
    target, own = cache / embedded.NAME, embedded.model_dir()  # this machine's: either cache
    if not (target / "model.safetensors").is_file():
        if (own / "model.safetensors").is_file() and own.resolve() != target.resolve():
            with atomic_dir(target, done=lambda t: (t / "model.safetensors").is_file()) as tmp:
                shutil.copytree(own, tmp, dirs_exist_ok=True)
        else:
            _convert_into(cache)
    return cache


def proxy_command() -> Path:
    """configurable-http-proxy: beside this Python (scripts/setup.sh installs it there), else on
    PATH."""
    local = Path(sys.executable).parent / "configurable-http-proxy"
    found = local if local.exists() else shutil.which("configurable-http-proxy")
    if not found:
        raise HubError(
            "configurable-http-proxy (JupyterHub's proxy, from npm) is not installed.",
            f"Install Node.js ≥ 20, then: {PROXY_INSTALL}.",
        )
    return Path(found)


def parse_bytes(value: str | int) -> int:
    """Bytes from 2147483648 or "2G" / "512M" (powers of 1024, as JupyterHub's mem_limit reads)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return validate.integer("memory", value, lo=64 * 2**20)
    text = str(value).strip().upper()
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    try:
        number = float(text[:-1]) * units[text[-1]] if text[-1:] in units else float(text)
    except ValueError:
        number = -1
    if number < 64 * 2**20:
        raise HubError(
            f"memory={value!r} is not a size a learner's server can live in.",
            "Give bytes or a size like '2G' or '1536M' (at least 512M for a Jupyter server).",
        )
    return int(number)


def _room(room: Room | str | None) -> Room | None:
    if room is None or isinstance(room, Room):
        return room
    from ..runtime.room import parse_room

    return parse_room(room.split("=", 1)[1] if room.startswith("LLAMALAB_ROOM=") else room)


def _check_read_only(cache: Path) -> None:
    """That a learner's server can be given the cache read-only (a mount namespace: root)."""
    import subprocess

    probe = cache / f".write-probe-{os.getpid()}"
    code = f"open({str(probe)!r}, 'w')"
    try:
        r = subprocess.run([sys.executable, "-c", code], preexec_fn=lambda: read_only(str(cache)),
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    except subprocess.SubprocessError as e:
        raise HubError(
            f"The shared cache cannot be mounted read-only for learners ({e}).",
            "Start the hub as root (it needs a mount namespace per learner's server).",
        ) from None
    probe.unlink(missing_ok=True)
    if "Read-only file system" not in r.stderr:
        raise HubError(f"Writing into the read-only {cache} did not fail: {r.stderr[-300:]}",
                       "Report this: learners could change the shared cache.")  # fmt: skip


def _require_jupyterhub() -> None:
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        raise HubError(
            "JupyterHub is not installed.", f"Install the hub extra: {HUB_EXTRA}."
        ) from None
    proxy_command()


def _convert_into(cache: Path) -> None:
    import subprocess

    code = "from llamalab.runtime.files.embedded import ensure_model; ensure_model()"
    env = {k: v for k, v in os.environ.items() if k != "LLAMALAB_SHARED_CACHE"}
    env["LLAMALAB_CACHE"] = str(cache)  # converted there, not found elsewhere
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def _write_secret(path: Path, data: dict) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps(data))


def _reach(host: str) -> str:
    return HOST if host == ANY_HOST else host


def _wait_up(hub: Hub, timeout: float) -> None:
    """Until the hub answers through its proxy; HubError with its log if it ends or is slow."""
    from .hub_client import HubClient

    client, deadline = HubClient(hub.url, hub.api_token), time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not hub.task.running:
            raise HubError(f"JupyterHub ended while starting:\n{hub.task.tail(20)}",
                           f"Its full log: {hub.task.log_path}")  # fmt: skip
        if client.up():
            return
        hub.task.join(0.25)
    raise HubError(f"JupyterHub did not answer at {hub.url} within {timeout:.0f} s:\n"
                   f"{hub.task.tail(20)}", "Give it longer: start_timeout=…")  # fmt: skip


def _end_proxy(pid_file: Path) -> None:
    """The proxy the hub started, if the hub could not stop it (by its PID file, checked)."""
    try:
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if b"configurable-http-proxy" in cmdline:
        os.kill(pid, signal.SIGTERM)


def _groups_under(hub: Hub) -> list[LimitedGroup]:
    """Learners' groups still there after the hub ended, and then the hub's own folder."""
    parent = existing_group(hub.group_prefix)
    folder = parent.memory_dir
    names = [p.name for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
    return [*(hub.group(n) for n in names), parent]
