"""Serve a GGUF with llama.cpp's native server (continuous batching, parallel slots, /health,
/metrics) in a subprocess Task on 127.0.0.1, behind an API key, for as long as a `with` block lasts.

    with llamalab.serve("default", scheme="q4_k_m", parallel=4) as server:
        server.connect().generate("Hi")          # the served model, as a LoadedModel
        server.url, server.pid, server.rss_bytes(), server.tail()

Why xllamacpp: its prebuilt CPU wheel (~100 MB installed, no compiler) runs llama.cpp's own server
(`llama-server`); llama-cpp-python's server serves one request at a time. See docs/deploy.md.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import catalog
from ..core import memory, tasks, validate
from ..core.errors import BackendMissing, InvalidSetting, TaskFailed, install_extra
from ..core.settings import setting, with_changes
from ..engines.llamacpp import default_threads
from ..runtime import connect
from ..runtime.files.source import NeedsConversion, resolve
from ..runtime.loaded import LoadedModel
from ..runtime.remote import ServedProcess


class ServerFailed(TaskFailed):
    """The server process did not start, or never became healthy; `log_tail` holds
    the end of its log."""


@dataclass(frozen=True)
class ServeSettings:
    """How `serve()` runs llama.cpp's server (the API key is passed on its own,
    never kept in settings)."""

    scheme: str = setting(
        "q4_k_m",
        "The GGUF type to serve a catalog model under (made with llama.cpp's tools "
        "if missing); ignored for a .gguf file.",
    )
    parallel: int = setting(4, "Slots: requests the server decodes together (continuous batching).")
    context: int = setting(2048, "Tokens each slot holds (prompt + reply).")
    threads: int | None = setting(
        None,
        "llama.cpp CPU threads (None: the cores this process may use, at most OMP_NUM_THREADS).",
    )
    model_id: str | None = setting(
        None, "The id clients send as `model` (None: the catalog name or the file's)."
    )
    start_timeout: float = setting(
        120.0, "Seconds to wait for /health to answer ok before giving up."
    )

    def __post_init__(self):
        validate.text("scheme", self.scheme)
        validate.integer("parallel", self.parallel, lo=1, hi=256)
        validate.integer("context", self.context, lo=64)
        if self.threads is not None:
            validate.integer("threads", self.threads, lo=1)
        if self.model_id is not None:
            validate.text("model_id", self.model_id)
        validate.number("start_timeout", self.start_timeout, lo=1)


@dataclass
class Server(ServedProcess):
    """A running llama.cpp server: where it is, its key, its process (`task`, a process Task).
    Stopped by `stop()`, the `with` block, or at interpreter exit."""

    url: str  # http://127.0.0.1:PORT (OpenAI-compatible API under /v1)
    model_id: str  # the id it serves the model under (what clients send as "model")
    gguf: str
    settings: ServeSettings
    threads: int
    task: tasks.Task = field(repr=False)
    key_env: str = field(repr=False, default="")
    card: str = ""
    scheme: str = ""
    start_s: float = 0.0
    _model: LoadedModel | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int:
        return self.task.pid

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def api_key(self) -> str:
        """The key clients must send (generated per start unless given).
        Never printed by the kit."""
        return os.environ.get(self.key_env, "")

    @property
    def alive(self) -> bool:
        return self.task.running

    def tail(self, n: int = 40) -> str:
        """The last lines of the server's log."""
        return self.task.tail(n)

    def connect(self) -> LoadedModel:
        """The served model, as a LoadedModel (the key is read from `key_env` at each request)."""
        if self._model is None:
            self._model = connect(
                self.url,
                self.model_id,
                api_key_env=self.key_env,
                card=self.card or None,
                scheme=self.scheme or None,
            )
        return self._model

    def rss_bytes(self) -> int | None:
        """The server process's resident memory now (None once it has ended)."""
        return memory.rss_bytes(self.pid)

    def metrics(self) -> dict[str, float]:
        """llama.cpp's Prometheus counters and gauges (GET /metrics), as {name: value}."""
        import httpx

        r = httpx.get(
            self.url + "/metrics", headers={"Authorization": f"Bearer {self.api_key}"}, timeout=5
        )
        r.raise_for_status()
        return parse_prometheus(r.text)

    def stop(self) -> None:
        """End the server (SIGTERM, then SIGKILL after 5 s), wait for it, and forget its key."""
        self.task.stop()
        try:
            self.task.wait()
        except TaskFailed:
            pass  # stopped, or it had died already: either way it is gone
        os.environ.pop(self.key_env, None)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(
    model_or_gguf="default",
    settings: ServeSettings | None = None,
    *,
    api_key: str | None = None,
    **overrides,
) -> Server:
    """Start llama.cpp's server for a GGUF (a .gguf path, or a model name whose `scheme` GGUF is
    made if missing) on 127.0.0.1 at a free port, with an API key, and wait until /health says ok.
    `settings` (a ServeSettings) and/or its fields as keywords. Use it as a context manager
    (`with serve(...) as server:`): the process is stopped by PID on exit, also on Ctrl-C, and at
    interpreter exit (the Task registry)."""
    _require_xllamacpp()
    s = with_changes(settings or ServeSettings(), **overrides)
    threads = s.threads or default_threads()
    gguf, card, scheme = gguf_for(model_or_gguf, s.scheme)
    alias = s.model_id or card or Path(gguf).stem
    key = api_key if api_key is not None else secrets.token_urlsafe(24)
    port = free_port()
    key_env = f"LLAMALAB_SERVER_KEY_{port}"
    config = {
        "gguf": str(gguf),
        "alias": alias,
        "port": port,
        "parallel": s.parallel,
        "context": s.context,
        "threads": threads,
    }
    t0 = time.perf_counter()
    task = tasks.start_process(
        "llamalab.serving._server_main",
        label=f"llama.cpp server :{port}",
        tail_lines=200,
        env={"LLAMALAB_SERVER_CONFIG": json.dumps(config), "LLAMALAB_SERVER_KEY": key},
    )
    os.environ[key_env] = key
    server = Server(
        url=f"http://127.0.0.1:{port}",
        model_id=alias,
        gguf=str(gguf),
        settings=s,
        threads=threads,
        task=task,
        key_env=key_env,
        card=card or "",
        scheme=scheme,
    )
    try:
        wait_healthy(server, s.start_timeout)
    except BaseException:  # not healthy, or Ctrl-C while waiting: leave nothing running
        server.stop()
        raise
    server.start_s = time.perf_counter() - t0
    return server


def gguf_for(model_or_gguf, scheme: str) -> tuple[str, str | None, str]:
    """(the GGUF file to serve, the catalog model it is (None for a bare file), its scheme name)."""
    path = Path(str(model_or_gguf)).expanduser()
    if str(model_or_gguf).endswith(".gguf"):
        if not path.is_file():
            raise InvalidSetting(
                f"{path} does not exist.", "Pass an existing .gguf file or a model name."
            )
        return str(path), None, catalog.card(path).gguf_type
    c, s = catalog.card(model_or_gguf), catalog.scheme(scheme, model_or_gguf)
    if not s.is_gguf:
        raise InvalidSetting(
            f"scheme={scheme!r} is not a GGUF type; llama.cpp serves GGUF files.",
            "Use q4_k_m, q8_0, f16 (…) or export first with llamalab.export_gguf().",
        )
    found = resolve(model_or_gguf, c, s)
    if isinstance(found, NeedsConversion):
        from ..runtime.files.gguf import convert

        found = convert(found.model, found.outtype)
    return str(found), c.name, s.name


def wait_healthy(server: Server, timeout: float) -> None:
    """Poll GET /health until 200; ServerFailed with the log tail if the process ends
    or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive:
            raise ServerFailed(
                "The server process ended before it became healthy.",
                "Read its log (log_tail): a bad GGUF, its port taken, or out of memory.",
                log_tail=server.tail(),
            )
        if _healthy(server):
            return
        server.task.stop_event.wait(0.2)
    raise ServerFailed(
        f"The server at {server.url} was not healthy within {timeout:g} s.",
        "Raise start_timeout= (a big model takes a while to load) or read the log.",
        log_tail=server.tail(),
    )


def _healthy(server: Server) -> bool:
    """GET /health answered 200 (llama.cpp answers 503 while the model loads)."""
    import httpx

    try:
        return httpx.get(server.url + "/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        raise BackendMissing(
            "xllamacpp", install_extra("deploy"), "it runs llama.cpp's native server"
        )
