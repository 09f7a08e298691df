"""Serve a GGUF with llama.cpp's native server (continuous batching, parallel slots, /health, /metrics)
in a subprocess on 127.0.0.1, behind an API key, for as long as a `with` block lasts.

    with llamalab.serve("default", scheme="q4_k_m", parallel=4) as server:
        server.endpoint.generate("Hi")          # an Endpoint: the OpenAI-compatible client
        server.url, server.pid, server.rss_bytes(), server.log

Why xllamacpp: its prebuilt CPU wheel (~100 MB installed, no compiler) runs llama.cpp's own server
(`llama-server`); llama-cpp-python's server serves one request at a time. See docs/deploy.md.
"""
from __future__ import annotations

import atexit
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import catalog, validate
from ..errors import BackendMissing, InvalidSetting, JobFailed, install_extra
from ..runtime.endpoint import Endpoint

ALIAS_DEFAULT = "local"
_running: dict[int, Server] = {}


class ServerFailed(JobFailed):
    """The server process did not start, or never became healthy; the message ends with its log."""


@dataclass
class Server:
    """A running llama.cpp server: where it is, its key, its process. Stopped by `stop()` or the `with` block."""
    url: str                    # http://127.0.0.1:PORT (OpenAI-compatible API under /v1)
    model: str                  # the model id it serves (what Endpoint sends as "model")
    gguf: str
    parallel: int
    ctx: int                    # context per slot
    threads: int
    process: subprocess.Popen = field(repr=False)
    log_path: Path = field(repr=False)
    key_env: str = field(repr=False, default="")
    card: str = ""
    start_s: float = 0.0
    _endpoint: Endpoint | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def api_key(self) -> str:
        """The key clients must send (generated per start unless given). Never printed by the kit."""
        return os.environ.get(self.key_env, "")

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def endpoint(self) -> Endpoint:
        """The OpenAI-compatible client for this server (the key is read from `key_env`)."""
        if self._endpoint is None:
            self._endpoint = Endpoint(self.url, self.model, api_key_env=self.key_env, card=self.card or None)
        return self._endpoint

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def log(self) -> str:
        """The last 40 lines of the server's log."""
        return tail(self.log_path, 40)

    def rss_bytes(self) -> int | None:
        """The server process's resident memory now (None once it has ended)."""
        import psutil
        try:
            return psutil.Process(self.pid).memory_info().rss
        except psutil.Error:
            return None

    def metrics(self) -> dict[str, float]:
        """llama.cpp's Prometheus counters and gauges (GET /metrics), as {name: value}."""
        import httpx
        r = httpx.get(self.url + "/metrics", headers={"Authorization": f"Bearer {self.api_key}"}, timeout=5)
        r.raise_for_status()
        return parse_prometheus(r.text)

    def stop(self) -> None:
        """End the server (SIGTERM, then SIGKILL after 5 s) and forget its key."""
        _running.pop(self.pid, None)
        stop_process(self.process)
        os.environ.pop(self.key_env, None)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(model_or_gguf="default", scheme: str = "q4_k_m", parallel: int = 4, ctx: int = 2048,
          api_key: str | None = None, threads: int | None = None, model_id: str | None = None,
          start_timeout: float = 120.0) -> Server:
    """Start llama.cpp's server for a GGUF (a .gguf path, or a model name whose `scheme` GGUF is made
    if missing) on 127.0.0.1 at a free port, with an API key, and wait until /health says ok.

    Use it as a context manager (`with serve(...) as server:`): the process is stopped by PID on exit,
    also on Ctrl-C / a kernel interrupt, and at interpreter exit. `parallel` slots each hold `ctx` tokens.
    """
    _require_xllamacpp()
    parallel = validate.integer("parallel", parallel, lo=1, hi=256)
    ctx = validate.integer("ctx", ctx, lo=64)
    threads = validate.integer("threads", threads, lo=1) if threads is not None else (os.cpu_count() or 2)
    gguf, card = gguf_for(model_or_gguf, scheme)
    alias = model_id or (card or Path(gguf).stem)
    key = api_key if api_key is not None else secrets.token_urlsafe(24)
    port = free_port()
    key_env = f"LLAMALAB_SERVER_KEY_{port}"
    log_path = Path(tempfile.mkdtemp(prefix="llamalab-server-")) / "server.log"
    config = {"gguf": str(gguf), "alias": alias, "port": port, "parallel": parallel, "ctx": ctx, "threads": threads}
    env = {**os.environ, "LLAMALAB_SERVER_CONFIG": json.dumps(config), "LLAMALAB_SERVER_KEY": key}
    t0 = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "llamalab.deploy._server_main"], stdin=subprocess.PIPE,
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    os.environ[key_env] = key
    server = Server(url=f"http://127.0.0.1:{port}", model=alias, gguf=str(gguf), parallel=parallel, ctx=ctx,
                    threads=threads, process=proc, log_path=log_path, key_env=key_env, card=card or "")
    _running[proc.pid] = server
    try:
        wait_healthy(server, start_timeout)
    except BaseException:               # not healthy, or Ctrl-C while waiting: leave nothing running
        server.stop()
        raise
    server.start_s = time.perf_counter() - t0
    return server


def gguf_for(model_or_gguf, scheme: str) -> tuple[str, str | None]:
    """The GGUF file to serve and the catalog model it is (None for a bare file)."""
    path = Path(str(model_or_gguf)).expanduser()
    if str(model_or_gguf).endswith(".gguf"):
        if not path.is_file():
            raise InvalidSetting(f"{path} does not exist.", "Pass an existing .gguf file or a model name.")
        return str(path), None
    from ..runtime.source import NeedsConversion, resolve
    c, s = catalog.card(model_or_gguf), catalog.scheme(scheme, model_or_gguf)
    if s.family != "gguf":
        raise InvalidSetting(f"scheme={scheme!r} is not a GGUF type; llama.cpp serves GGUF files.",
                             "Use q4_k_m, q8_0, f16 (…) or export first with llamalab.export_gguf().")
    found = resolve(model_or_gguf, c, s)
    if isinstance(found, NeedsConversion):
        from ..runtime.gguf_writer import convert
        found = convert(found.model, found.outtype)
    return str(found), c.name


def wait_healthy(server: Server, timeout: float) -> None:
    """Poll GET /health until 200; ServerFailed with the log tail if the process ends or time runs out."""
    import httpx
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive:
            raise ServerFailed(f"The server process ended (exit code {server.process.returncode}) before it "
                               "became healthy.", "Read the log below: a bad GGUF, or out of memory.",
                               log_tail=server.log)
        try:
            if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise ServerFailed(f"The server at {server.url} was not healthy within {timeout:g} s.",
                       "Raise start_timeout= (a big model takes a while to load) or read the log.", log_tail=server.log)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; closes its stdin (which also ends it)."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        except ProcessLookupError:
            pass
    if proc.stdin:
        try:
            proc.stdin.close()
        except OSError:
            pass


def tail(path: Path, lines: int) -> str:
    try:
        data = Path(path).read_bytes()[-16384:].decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def parse_prometheus(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name.strip()] = float(value)
            except ValueError:
                pass
    return out


def _require_xllamacpp() -> None:
    import importlib.util
    if importlib.util.find_spec("xllamacpp") is None:
        raise BackendMissing("xllamacpp", install_extra("deploy"), "it runs llama.cpp's native server")


@atexit.register
def _stop_all() -> None:
    for server in list(_running.values()):
        server.stop()

