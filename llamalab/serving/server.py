"""Serve a GGUF with llama.cpp's native server (continuous batching, parallel slots, /health,
/metrics) in a subprocess Task on 127.0.0.1, behind an API key, for as long as a `with` block lasts.

    with llamalab.serve("default", scheme="q4_k_m", parallel=4) as server:
        server.connect().generate("Hi")          # the served model, as a LoadedModel
        server.url, server.pid, server.rss_bytes(), server.tail()

Why xllamacpp: its prebuilt CPU wheel (~100 MB installed, no compiler) runs llama.cpp's own server
(`llama-server`); llama-cpp-python's server serves one request at a time. See docs/deploy.md.

No port race: the server process binds a port itself (llama.cpp's `--port 0`) and reports it on its
own stdout; nothing here picks a port for another process to take first. Before the key is sent
anywhere, the listener on that port must be the server process; then a request without the key must
be refused and the same request with it must list our model id. The key lives in the server
process's environment and in the `Server` object, never in this process's `os.environ`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import shutil
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
from ..runtime.files.lora import check_fits
from ..runtime.files.source import NeedsConversion, resolve
from ..runtime.loaded import LoadedModel
from ..runtime.remote import ServedProcess
from . import served_adapters
from .export import CHECK_PROMPTS

HOST = "127.0.0.1"
ANY_HOST = "0.0.0.0"  # every interface: only when the caller names it
SERVER_MAIN = "llamalab.serving._server_main"  # the server process's module


class ServerFailed(TaskFailed):
    """The server process did not start, never became healthy, or what answered on its port
    was not it; `log_tail` holds the end of its log."""


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
        "llama.cpp CPU threads (None: the CPUs this process may use — its affinity set, capped by "
        "the container's CPU quota and by OMP_NUM_THREADS).",
    )
    model_id: str | None = setting(
        None, "The id clients send as `model` (None: the catalog name or the file's)."
    )
    start_timeout: float = setting(
        120.0, "Seconds to wait for the server to load, listen and answer /health ok."
    )
    host: str = setting(
        HOST,
        "The interface to bind: 127.0.0.1 (this machine only). Another address of this machine "
        "or 0.0.0.0 (every interface) only when you name it: the network can then reach the "
        "server (its key still guards every request).",
    )
    port: int = setting(
        0,
        "The port on the host (0: the server process binds a free one itself and reports it, "
        "so no other program can take it in between).",
    )
    keep_logs: bool = setting(
        False,
        "Keep the server's log after stop(), at server.log_path (False: its temporary folder "
        "is removed with the server).",
    )
    prompt_cache: bool = setting(
        True,
        "Let a request reuse the KV of the longest prefix a slot already holds (llama.cpp's "
        "--cache-prompt; the chat template's system part, a repeated prompt). False "
        "(--no-cache-prompt): every request pre-fills its whole prompt, as a benchmark of "
        "prefill needs; a request's own cache_prompt field still overrides it.",
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
        object.__setattr__(self, "host", bindable_host(self.host))
        validate.integer("port", self.port, lo=0, hi=65535)
        validate.flag("keep_logs", self.keep_logs)
        validate.flag("prompt_cache", self.prompt_cache)


class Secret:
    """A string no repr, str() or f-string shows (`.value` reads it)."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __repr__(self) -> str:
        return "Secret(hidden)"

    __str__ = __repr__


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
    key_env: str = field(repr=False, default="")  # always "": the key is not in os.environ
    card: str = ""
    scheme: str = ""
    start_s: float = 0.0
    key: Secret = field(repr=False, default_factory=lambda: Secret(""))
    kept_log: Path | None = field(repr=False, default=None)  # the log kept past stop()
    adapters_loaded: dict = field(default_factory=dict)  # name -> adapter GGUF, in id order
    _models: dict = field(default_factory=dict, init=False, repr=False)  # adapter → connection

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
        Never printed by the kit, never put in os.environ."""
        return self.key.value

    @property
    def alive(self) -> bool:
        return self.task.running

    @property
    def log_path(self) -> Path | None:
        """The server's full log: kept past stop() with keep_logs=True; otherwise in the task's
        temporary folder, which stop() removes (None once it is gone)."""
        if self.kept_log is not None:
            return self.kept_log
        path = self.task.log_path
        return path if path is not None and path.exists() else None

    def tail(self, n: int = 40) -> str:
        """The last lines of the server's log."""
        return self.task.tail(n)

    def connect(self, adapter: str | None = None, scale: float = 1.0) -> LoadedModel:
        """The served model, as a LoadedModel that sends this server's key (held here, not in
        os.environ); its generations' peak memory is this server process's RSS. `adapter`: a
        model whose every request carries the per-request `lora` field for that adapter (at
        `scale`), whatever use_adapter() set — two connections, two adapters, one server.
        With adapters loaded, no request reuses a cached prompt: this llama.cpp build serves a
        request without `lora` from a slot's cache computed with another adapter (measured:
        the base answered in an adapter's format), so every request prefills its prompt."""
        key = None if adapter is None else (adapter, float(scale))
        if key not in self._models:
            # the adapter's per-request field (self.lora refuses unknown names)
            extra = self.lora(adapter, scale) if adapter is not None else {}
            if self.adapters_loaded:
                extra = {**extra, "cache_prompt": False}
            model = connect(
                self.url,
                self.model_id,
                card=self.card or None,
                scheme=self.scheme or None,
                check=False,
                key=lambda: self.key.value,
            )
            model.engine.check_model()
            model.engine.server_pid = self.pid  # its peak memory: this server process's RSS
            model.engine.extra_body = extra
            self._models[key] = dataclasses.replace(model, adapter=adapter or "")
        return self._models[key]

    def rss_bytes(self) -> int | None:
        """The server process's resident memory now (None once it has ended)."""
        return memory.rss_bytes(self.pid)

    def metrics(self) -> dict[str, float]:
        """llama.cpp's Prometheus counters and gauges (GET /metrics), as {name: value}."""
        r = loopback_get(self.url + "/metrics", self.key, timeout=5)
        r.raise_for_status()
        return parse_prometheus(r.text)

    @property
    def adapter_names(self) -> list[str]:
        return list(self.adapters_loaded)

    def adapters(self) -> list[dict]:
        """The adapters loaded (GET /lora-adapters): name, id, path, and the scale every request
        without its own `lora` field uses now."""
        r = loopback_get(self.url + "/lora-adapters", self.key, timeout=5)
        r.raise_for_status()
        names = self.adapter_names
        return [{"name": names[a["id"]], **{k: a[k] for k in ("id", "path", "scale")}}
                for a in r.json()]  # fmt: skip

    def use_adapter(self, name: str | None, scale: float = 1.0) -> None:
        """Make adapter `name` (at `scale`) what every request uses (POST /lora-adapters); None:
        the base alone. Nothing is merged: switching back is another call."""
        served_adapters.post(self, "/lora-adapters", served_adapters.scales(
            self.adapter_names, name, scale))  # fmt: skip

    def lora(self, name: str | None, scale: float = 1.0) -> dict:
        """The per-request field for adapter `name` ({"lora": [...]}, to add to one request's
        JSON): that request uses it, whatever use_adapter() set."""
        return {"lora": served_adapters.scales(self.adapter_names, name, scale)}

    def check_adapter(self, name: str, reference, base=None, prompts=CHECK_PROMPTS, **options):
        """ServedAdapterCheck: adapter `name` served here against `reference` (the in-process
        base + peft adapter) and, given `base` (the in-process base), the server with adapters
        off against it (see served_adapters.check for `max_new_tokens`, `scale`, `base_kl`)."""
        return served_adapters.check(self, name, reference, base, prompts, **options)

    def stop(self) -> None:
        """End the server (SIGTERM, then SIGKILL after 5 s), wait for it, and remove its
        temporary folder (its log stays at `log_path` with keep_logs=True)."""
        end_process(self.task, self.kept_log)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(
    model_or_gguf="default",
    settings: ServeSettings | None = None,
    *,
    api_key: str | None = None,
    adapters: dict | None = None,
    **overrides,
) -> Server:
    """Start llama.cpp's server for a GGUF (a .gguf path, or a model name whose `scheme` GGUF is
    made if missing) on 127.0.0.1, with an API key, and wait until it is listening, healthy and
    provably ours (the listener is its process; it refuses a request without the key and answers
    one with it). `settings` (a ServeSettings) and/or its fields as keywords. Use it as a context
    manager (`with serve(...) as server:`): the process is stopped by PID on exit, also on Ctrl-C,
    and at interpreter exit (the Task registry).
    `adapters`: {name: GGUF LoRA adapter} loaded beside the model, all off until
    `server.use_adapter(name)` or a request's `lora` field (`server.lora(name)`) turns one on."""
    _require_xllamacpp()
    s = with_changes(settings or ServeSettings(), **overrides)
    if api_key is not None:
        validate.text("api_key", api_key)
    threads = s.threads or default_threads()
    gguf, card, scheme = gguf_for(model_or_gguf, s.scheme)
    loaded_adapters = adapter_files(adapters, gguf)
    alias = s.model_id or card or Path(gguf).stem
    key = Secret(api_key if api_key is not None else secrets.token_urlsafe(24))
    config = {
        "gguf": str(gguf),
        "alias": alias,
        "port": s.port,
        "parallel": s.parallel,
        "context": s.context,
        "threads": threads,
        "host": s.host,
        "adapters": list(loaded_adapters.values()),
        "prompt_cache": s.prompt_cache,
    }
    t0, deadline = time.perf_counter(), time.monotonic() + s.start_timeout
    task = tasks.start_process(
        SERVER_MAIN,
        label="llama.cpp server",
        tail_lines=200,
        env={"LLAMALAB_SERVER_CONFIG": json.dumps(config), "LLAMALAB_SERVER_KEY": key.value},
    )
    kept = keep_log(task) if s.keep_logs else None
    try:
        port = listening_port(task, s, deadline)
        check_owner(task, port, s.host)  # before any request: no key reaches another program
        server = Server(
            url=f"http://{reach_address(s.host)}:{port}",
            model_id=alias,
            gguf=str(gguf),
            settings=s,
            threads=threads,
            task=task,
            card=card or "",
            scheme=scheme,
            key=key,
            kept_log=kept,
            adapters_loaded=loaded_adapters,
        )
        wait_healthy(server, max(0.0, deadline - time.monotonic()))
        check_identity(server)
        if loaded_adapters:  # llama.cpp lists them at 1.0 while they are off: say 0 explicitly
            server.use_adapter(None)
    except BaseException:  # not ours, not healthy, or Ctrl-C while waiting: leave nothing running
        end_process(task, kept)
        raise
    server.start_s = time.perf_counter() - t0
    return server


def adapter_files(adapters, base_gguf) -> dict[str, str]:
    """{name: adapter GGUF path}, each checked to be a LoRA adapter that fits `base_gguf`."""
    if adapters is None:
        return {}
    if not isinstance(adapters, dict) or not adapters:
        raise InvalidSetting(
            f"adapters={adapters!r} is not a non-empty dict.",
            "Pass adapters={'name': 'adapter.gguf', ...} (export_gguf(run.adapter_dir).path).",
        )
    out = {}
    for name, path in adapters.items():
        validate.text("adapters name", name)
        out[name] = check_fits(path, base_gguf).path
    return out


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


def listening_port(task: tasks.Task, s: ServeSettings, deadline: float) -> int:
    """The port the server process reports once it has bound it and loaded the model (its
    "listening" event); ServerFailed if it ends first, time runs out, or the address is not
    127.0.0.1 (or not the port asked for)."""
    while True:
        event = next((e for e in reversed(task.events) if e.get("event") == "listening"), None)
        if event is not None:
            return _port_of(str(event.get("address", "")), s.port, task, s.host)
        if not task.running:
            raise ServerFailed(
                "The server process ended before it was listening.",
                "Read its log (log_tail): a bad GGUF, the port you asked for taken, "
                "or out of memory.",
                log_tail=task.tail(),
            )
        if time.monotonic() >= deadline:
            raise ServerFailed(
                f"The server process was not listening within {s.start_timeout:g} s.",
                "Raise start_timeout= (a big model takes a while to load) or read the log.",
                log_tail=task.tail(),
            )
        task.stop_event.wait(0.1)


def _port_of(address: str, asked: int, task: tasks.Task, host: str = HOST) -> int:
    found = re.fullmatch(rf"https?://{re.escape(host)}:(\d+)/?", address.strip())
    port = int(found.group(1)) if found else 0
    if not 0 < port < 65536 or (asked and port != asked):
        raise ServerFailed(
            f"The server process reported {address!r}, not {host}:{asked or 'PORT'}.",
            "Read its log (log_tail); report it if the server binds elsewhere.",
            log_tail=task.tail(),
        )
    return port


def check_owner(task: tasks.Task, port: int, host: str = HOST) -> None:
    """ServerFailed, before any request is sent, unless the listener on host:port belongs to
    the server process (or a child of it): then no other program can receive the key."""
    if port in listening_ports(task.pid, host):
        return
    raise ServerFailed(
        f"{host}:{port} is not the server process's (pid {task.pid}): another program "
        "listens there. Nothing, and no key, was sent to it.",
        "Start again with port=0 (the server binds a free port itself); find that program "
        f"with `ss -ltnp 'sport = :{port}'`.",
        log_tail=task.tail(),
    )


def listening_ports(pid: int | None, host: str = HOST) -> set[int]:
    """The TCP ports on `host` that process `pid` and its children listen on."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError, TypeError):
        return set()
    ports = set()
    for proc in procs:
        try:
            conns = proc.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        ports |= {
            c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN and c.laddr.ip == host
        }
    return ports


def wait_healthy(server: Server, timeout: float) -> None:
    """Poll GET /health until it answers 200 {"status": "ok"} (llama.cpp answers 503 while the
    model loads); ServerFailed with the log tail if the process ends or time runs out."""
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
    """GET /health (public, no key sent) answered 200 with {"status": "ok"}."""
    import httpx

    try:
        r = loopback_get(server.url + "/health", None, timeout=2)
        return r.status_code == 200 and r.json().get("status") == "ok"
    except (httpx.TransportError, ValueError, AttributeError):
        return False


def check_identity(server: Server) -> None:
    """ServerFailed unless the server is ours: GET /metrics without the key is refused (401/403:
    llama.cpp keeps every path but /health behind the key), then GET /v1/models with our key
    answers 200 and lists our model id. The keyless request goes first."""
    import httpx

    try:
        anon = loopback_get(server.url + "/metrics", None, timeout=5)
        if anon.status_code not in (401, 403):
            raise _not_ours(server, f"answered {anon.status_code} to a request without the key")
        keyed = loopback_get(server.url + "/v1/models", server.key, timeout=5)
        ids = _model_ids(keyed) if keyed.status_code == 200 else []
    except httpx.TransportError as e:
        raise _not_ours(server, f"broke off the check ({e!r})") from None
    if server.model_id not in ids:
        raise _not_ours(
            server, f"answered {keyed.status_code} to our key, listing {ids or 'no model'}"
        )


def _not_ours(server: Server, what: str) -> ServerFailed:
    return ServerFailed(
        f"What listens at {server.url} {what}: not the llama.cpp server this process started "
        f"(it refuses requests without the key and serves {server.model_id!r}).",
        "Start again; read the log (log_tail) and check what else listens on that port "
        f"(`ss -ltnp 'sport = :{server.port}'`).",
        log_tail=server.tail(),
    )


def _model_ids(r) -> list[str]:
    try:
        body = r.json()
    except ValueError:
        return []
    data = body.get("data", []) if isinstance(body, dict) else []
    return [str(m.get("id", "")) for m in data if isinstance(m, dict)]


def loopback_get(url: str, key: Secret | None, timeout: float):
    """GET on our own server: with the key only when given, never through a proxy from the
    environment (trust_env=False), which would otherwise see the key."""
    import httpx

    headers = {"Authorization": f"Bearer {key.value}"} if key is not None else {}
    with httpx.Client(trust_env=False, timeout=timeout) as client:
        return client.get(url, headers=headers)


def keep_log(task: tasks.Task) -> Path | None:
    """A second name for the task's log beside its temporary folder (a hard link: the log keeps
    growing there and outlives the folder); None where links are not possible (then stop()
    copies it)."""
    kept = Path(task.workdir).parent / f"{Path(task.workdir).name}-server.log"
    try:
        os.link(task.log_path, kept)
    except OSError:
        return kept.with_suffix(".copy.log")
    return kept


def end_process(task: tasks.Task, kept_log: Path | None) -> None:
    """Stop the process task, wait for it, and remove its temporary folder (the Task keeps a
    failed one for its error; the Server removes it, its tail is in the error)."""
    if kept_log is not None and not kept_log.exists() and task.log_path.exists():
        shutil.copyfile(task.log_path, kept_log)  # no hard link here: copy before it goes
    task.stop()
    try:
        task.wait()
    except TaskFailed:
        pass  # stopped, or it had died already: either way it is gone
    if task.workdir is not None:
        shutil.rmtree(task.workdir, ignore_errors=True)


def bindable_host(host: str) -> str:
    """`host` checked to be 127.0.0.1, 0.0.0.0 or an IPv4 address of this machine's interfaces."""
    import ipaddress

    import psutil

    validate.text("host", host)
    ours = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs
            if a.family == socket.AF_INET}  # fmt: skip
    try:
        known = host in ours | {HOST, ANY_HOST} and bool(ipaddress.IPv4Address(host))
    except ValueError:
        known = False
    if known:
        return host
    raise InvalidSetting(
        f"host={host!r} is not an IPv4 address of this machine.",
        f"Use {HOST} (this machine only), one of {sorted(ours) or 'its addresses'} (`ip -4 addr`), "
        f"or {ANY_HOST} (every interface).",
    )


def reach_address(host: str) -> str:
    """The address this machine reaches a server bound to `host` at (0.0.0.0: loopback)."""
    return HOST if host == ANY_HOST else host


def free_port() -> int:
    """A port free right now (for clients that must point at nothing). `serve()` never uses it:
    its server binds a port itself."""
    with socket.socket() as s:
        s.bind((HOST, 0))
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
