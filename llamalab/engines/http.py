"""What the engines that talk to a model server over HTTP share: the URL, the key (read from the
environment at each request, never stored, printed or logged), the client, and the errors a learner
sees. Each wire protocol is its own engine: `openai.py` (any OpenAI-compatible server) and
`ollama.py`."""

from __future__ import annotations

import difflib
import os
from contextlib import contextmanager
from dataclasses import dataclass

from ..core.errors import BackendMissing, InvalidSetting, LlamalabError, install_extra
from .base import Concurrent, Engine, Sampling, Usage, to_messages


class EndpointError(LlamalabError):
    """A request to a model server failed; the message says how, the fix what to check."""


class EndpointUnreachable(EndpointError):
    pass


class EndpointAuthError(EndpointError):
    pass


class EndpointTimeout(EndpointError):
    pass


class UnknownServedModel(EndpointError):
    def __init__(self, model: str, served: list[str], url: str):
        self.model, self.served = model, served
        close = difflib.get_close_matches(model, served, n=3, cutoff=0.3)
        hint = f"Did you mean {', '.join(close)}? " if close else ""
        super().__init__(
            f"The server at {url} does not serve a model called {model!r}.",
            f"{hint}It serves: {', '.join(served) or '(none listed)'}.",
        )


@dataclass(frozen=True)
class ServerTimings:
    """What the server itself reported for the last request (Ollama's durations,
    llama.cpp's timings)."""

    prompt_tokens: int | None = None
    new_tokens: int | None = None
    prompt_s: float | None = None
    decode_s: float | None = None
    total_s: float | None = None


def httpx():
    try:
        import httpx
    except ImportError:
        raise BackendMissing(
            "httpx", install_extra("deploy"), "the model-server client needs it"
        ) from None
    return httpx


def check_url(base_url: str) -> str:
    url = str(base_url).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise InvalidSetting(
            f"base_url={base_url!r} is not an http(s) URL.",
            "Pass e.g. 'http://127.0.0.1:8080' (llama.cpp) or 'http://localhost:11434' (Ollama).",
        )
    return url


class HttpEngine(Engine, Concurrent):
    """A model on a server: takes chat messages (no tokenizer here), streams text pieces, reports
    the server's token counts as Usage; no local memory to measure. Subclasses give the wire
    protocol: `CHAT_PATH`, `request_body()`, `parse_line()` and `served_models()`."""

    remote = True
    streams_text = True
    CHAT_PATH = ""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        timeout: float = 60.0,
        context_length: int = 0,
    ):
        if api_key_env is not None and not os.environ.get(api_key_env):
            raise EndpointAuthError(
                f"The environment variable {api_key_env} (the API key) is not set.",
                f"Set it before starting Jupyter (export {api_key_env}=...), or in the notebook "
                f"with os.environ[{api_key_env!r}] = getpass.getpass().",
            )
        self.base, self.model_id, self.api_key_env = (
            self.api_base(check_url(base_url)),
            model,
            api_key_env,
        )
        self.timeout = float(timeout)
        self.context_length = context_length or 1 << 30  # the server enforces its own context
        self.last_timings = ServerTimings()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base!r}, model={self.model_id!r})"

    @staticmethod
    def api_base(url: str) -> str:
        """The URL requests go under."""
        return url

    @property
    def is_chat(self) -> bool:
        return True

    # ---- the wire protocol --------------------------------------------------------------------
    def request_body(self, messages: list[dict], s: Sampling) -> dict:
        raise NotImplementedError

    def parse_line(self, line: str) -> dict | None:
        """One streamed line → {"text", "usage", "timings", "done"} (None: nothing in it)."""
        raise NotImplementedError

    def served_models(self) -> list[str]:
        """Model ids the server lists."""
        raise NotImplementedError

    def serves(self, served: list[str]) -> bool:
        return self.model_id in served

    # ---- HTTP ------------------------------------------------------------------------------------
    def headers(self) -> dict:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return {"Authorization": f"Bearer {key}"} if key else {}

    def client(self, timeout: float | None = None):
        """HTTP keep-alive is off: llama.cpp's server closes a connection after a streamed response,
        and a client reusing it gets "server disconnected"."""
        h = httpx()
        t = self.timeout if timeout is None else timeout
        return h.Client(
            timeout=h.Timeout(t, connect=min(t, 10.0)),
            headers=self.headers(),
            limits=h.Limits(max_keepalive_connections=0),
        )

    def get_json(self, path: str):
        with self.client(min(self.timeout, 10.0)) as c, self.errors():
            r = c.get(self.base + path)
        check_status(r, self.base, self.api_key_env)
        return r.json()

    def check_model(self) -> None:
        """Raise UnknownServedModel unless the server lists this model id
        (servers that list none pass)."""
        served = self.served_models()
        if served and not self.serves(served):
            raise UnknownServedModel(self.model_id, served, self.base)

    @contextmanager
    def errors(self):
        """Transport failures (refused, timed out, broken off) as the kit's errors."""
        h = httpx()
        try:
            yield
        except h.ConnectError as e:
            raise EndpointUnreachable(
                f"Cannot connect to {self.base}: {e}.",
                "Check the URL and port and that the server is running (with "
                "llamalab.serve(), use server.url).",
            ) from None
        except h.TimeoutException:
            raise EndpointTimeout(
                f"{self.base} did not answer within {self.timeout:g} s.",
                "Raise timeout=, lower max_new_tokens, or check that the server is not overloaded.",
            ) from None
        except h.TransportError as e:
            raise EndpointError(
                f"The connection to {self.base} failed: {e!r}.",
                "The server may have stopped; check its log (server.tail()).",
            ) from None

    # ---- Engine ----------------------------------------------------------------------------------
    def encode(self, prompt, system=None, chat=None):
        return to_messages(prompt, system)

    def decode(self, ids) -> str:
        return ""

    def generate(self, messages, sampling: Sampling, on_token, should_stop) -> Usage:
        usage, pieces = Usage(), 0
        with (
            self.client() as c,
            self.errors(),
            c.stream(
                "POST", self.base + self.CHAT_PATH, json=self.request_body(messages, sampling)
            ) as r,
        ):
            check_status(r, self.base, self.api_key_env)
            for line in r.iter_lines():
                event = self.parse_line(line)
                if event is None:
                    continue
                if event.get("text"):
                    on_token(event["text"])
                    pieces += 1
                usage = event.get("usage") or usage
                self.last_timings = event.get("timings") or self.last_timings
                if event.get("done") or should_stop():
                    break
        return Usage(
            usage.prompt_tokens, usage.new_tokens if usage.new_tokens is not None else pieces
        )


def check_status(r, url: str, api_key_env: str | None) -> None:
    """Raise the kit's error for a 401/403, 404 or any other failure status
    (the body is read first)."""
    if r.status_code < 400:
        return
    try:
        r.read()
        detail = r.text[:300]
    except Exception:
        detail = ""
    if r.status_code in (401, 403):
        how = (
            f"Check the key in the environment variable {api_key_env}."
            if api_key_env
            else "This server needs an API key: pass api_key_env='NAME_OF_THE_VARIABLE' holding it."
        )
        raise EndpointAuthError(
            f"{url} refused the request ({r.status_code}: missing or wrong API key).", how
        )
    if r.status_code == 404:
        raise EndpointError(
            f"{r.request.url} was not found (404) — not an OpenAI-compatible API at this URL, "
            f"or an unknown model. {detail}",
            "Check base_url (servers answer under /v1) and the model id (served_models()).",
        )
    raise EndpointError(
        f"{url} answered {r.status_code}: {detail}", "Check the request and the server's log."
    )
