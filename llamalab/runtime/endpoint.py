"""A served model as a LoadedModel: any OpenAI-compatible chat API (llama.cpp, vLLM, Ollama's /v1, TGI,
Together, Hugging Face endpoints, a LiteLLM proxy) or Ollama's native /api/chat, streamed.

    ep = Endpoint("http://127.0.0.1:8080", "smol", api_key_env="MY_KEY")
    ep.generate("Hi")            # the same Generation as a local model: TTFT, decode tokens/s, tokens

The API key is read from the environment variable named, at each request; it is never stored in an
attribute, printed, logged or shown in a repr. HTTP keep-alive is off: llama.cpp's server closes a
connection after a streamed response, and a client reusing it gets "server disconnected".
"""
from __future__ import annotations

import difflib
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass

from ..catalog import ModelCard, Scheme
from ..catalog import card as catalog_card
from ..errors import (
    BackendMissing,
    InvalidSetting,
    LlamalabError,
    UnknownModel,
    install_extra,
)
from ..estimate import Estimate
from .engine import Engine, Sampling, Usage, to_messages
from .loaded import REMOTE_MEMORY_KIND, LoadedModel

APIS = ("openai", "ollama")
REMOTE_SCHEME = Scheme(name="remote", family="remote", bits=0, help="served by another process or machine")


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
        super().__init__(f"The server at {url} does not serve a model called {model!r}.",
                         f"{hint}It serves: {', '.join(served) or '(none listed)'}.")


@dataclass(frozen=True)
class ServerTimings:
    """What the server itself reported for the last request (Ollama's native durations, llama.cpp's timings)."""
    prompt_tokens: int | None = None
    new_tokens: int | None = None
    prompt_s: float | None = None
    decode_s: float | None = None
    total_s: float | None = None


def _httpx():
    try:
        import httpx
    except ImportError:
        raise BackendMissing("httpx", install_extra("deploy"), "the OpenAI-compatible client needs it") from None
    return httpx


def api_base(base_url: str, api: str = "openai") -> str:
    """The URL requests go under: `…/v1` for OpenAI-compatible servers (added when missing), the root for Ollama."""
    url = str(base_url).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise InvalidSetting(f"base_url={base_url!r} is not an http(s) URL.",
                             "Pass e.g. 'http://127.0.0.1:8080' (llama.cpp) or 'http://localhost:11434' (Ollama).")
    if api == "ollama":
        return url.removesuffix("/v1")
    return url if url.endswith("/v1") else url + "/v1"


class EndpointEngine(Engine):
    """The Engine protocol over HTTP: takes chat messages (no tokenizer here), streams text pieces,
    reports the server's token counts as Usage; no local memory to measure."""
    name = "openai-compatible"
    remote = True
    streams_text = True

    def __init__(self, base_url: str, model: str, api_key_env: str | None = None, api: str = "openai",
                 timeout: float = 60.0, context_length: int = 0):
        if api not in APIS:
            raise InvalidSetting(f"api={api!r} is not known.", f"Use one of {', '.join(APIS)}.")
        if api_key_env is not None and not os.environ.get(api_key_env):
            raise EndpointAuthError(f"The environment variable {api_key_env} (the API key) is not set.",
                                    f"Set it before starting Jupyter (export {api_key_env}=...), or in the notebook "
                                    f"with os.environ[{api_key_env!r}] = getpass.getpass().")
        self.api, self.model_id, self.api_key_env = api, model, api_key_env
        self.base = api_base(base_url, api)
        self.timeout = float(timeout)
        self.context_length = context_length or 1 << 30   # the server enforces its own context
        self.name = "ollama" if api == "ollama" else "openai-compatible"
        self.last_timings = ServerTimings()
        self.extra_body: dict = {}      # more request fields (e.g. {"ignore_eos": True} for llama.cpp/vLLM)

    def __repr__(self) -> str:
        return f"EndpointEngine({self.base!r}, model={self.model_id!r}, api={self.api!r})"

    @property
    def is_chat(self) -> bool:
        return True

    # ---- HTTP ------------------------------------------------------------------------------------
    def headers(self) -> dict:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return {"Authorization": f"Bearer {key}"} if key else {}

    def client(self, timeout: float | None = None):
        httpx = _httpx()
        t = self.timeout if timeout is None else timeout
        return httpx.Client(timeout=httpx.Timeout(t, connect=min(t, 10.0)), headers=self.headers(),
                            limits=httpx.Limits(max_keepalive_connections=0))

    def served_models(self) -> list[str]:
        """Model ids the server lists (GET /v1/models, or /api/tags for Ollama)."""
        path = "/api/tags" if self.api == "ollama" else "/models"
        with self.client(min(self.timeout, 10.0)) as c:
            r = self._send(lambda: c.get(self.base + path))
            body = r.json()
        if self.api == "ollama":
            return [m.get("name", "") for m in body.get("models", [])]
        ids = []
        for m in body.get("data", []):
            ids += [m.get("id", ""), *m.get("aliases", [])]
        return [i for i in ids if i]

    def check_model(self) -> None:
        """Raise UnknownServedModel unless the server lists this model id (servers that list none pass)."""
        served = self.served_models()
        if served and self.model_id not in served and not (self.api == "ollama" and self.model_id + ":latest" in served):
            raise UnknownServedModel(self.model_id, served, self.base)

    def _send(self, request):
        """Run one request, turning transport and status failures into the kit's errors."""
        with self.errors():
            r = request()
        check_status(r, self.base, self.api_key_env)
        return r

    @contextmanager
    def errors(self):
        """Transport failures (refused, timed out, broken off) as the kit's errors."""
        httpx = _httpx()
        try:
            yield
        except httpx.ConnectError as e:
            raise EndpointUnreachable(f"Cannot connect to {self.base}: {e}.",
                                      "Check the URL and port and that the server is running (with "
                                      "llamalab.serve(), use server.url).") from None
        except httpx.TimeoutException:
            raise EndpointTimeout(f"{self.base} did not answer within {self.timeout:g} s.",
                                  "Raise timeout=, lower max_new_tokens, or check that the server is not "
                                  "overloaded.") from None
        except httpx.TransportError as e:
            raise EndpointError(f"The connection to {self.base} failed: {e!r}.",
                                "The server may have stopped; check its log (server.log).") from None

    # ---- Engine ----------------------------------------------------------------------------------
    def encode(self, prompt, system=None, chat=None):
        return to_messages(prompt, system)

    def decode(self, ids) -> str:
        return ""

    def request_body(self, messages, s: Sampling) -> dict:
        if self.api == "ollama":
            options = {"num_predict": s.max_new_tokens, "temperature": s.temperature, "top_p": s.top_p}
            if s.top_k:
                options["top_k"] = s.top_k
            if s.seed is not None:
                options["seed"] = s.seed
            return {"model": self.model_id, "messages": messages, "stream": True, "options": options}
        body = {"model": self.model_id, "messages": messages, "max_tokens": s.max_new_tokens,
                "temperature": s.temperature, "top_p": s.top_p, "stream": True,
                "stream_options": {"include_usage": True}}
        if s.top_k:
            body["top_k"] = s.top_k          # llama.cpp, vLLM and TGI accept it; OpenAI ignores unknown keys
        if s.seed is not None:
            body["seed"] = s.seed
        if s.min_new_tokens and s.min_new_tokens >= s.max_new_tokens:
            body["ignore_eos"] = True       # exactly max_tokens (llama.cpp, vLLM); what fixed_length asks for
        return {**body, **self.extra_body}

    def generate(self, messages, sampling: Sampling, on_token, should_stop) -> Usage:
        path = "/api/chat" if self.api == "ollama" else "/chat/completions"
        parse = parse_ollama_line if self.api == "ollama" else parse_sse_line
        usage, pieces = Usage(), 0
        with self.client() as c, self.errors(), \
                c.stream("POST", self.base + path, json=self.request_body(messages, sampling)) as r:
            check_status(r, self.base, self.api_key_env)
            for line in r.iter_lines():
                event = parse(line)
                if event is None:
                    continue
                if event.get("text"):
                    on_token(event["text"])
                    pieces += 1
                if event.get("usage"):
                    usage = event["usage"]
                if event.get("timings"):
                    self.last_timings = event["timings"]
                if event.get("done") or should_stop():
                    break
        return Usage(usage.prompt_tokens, usage.new_tokens if usage.new_tokens is not None else pieces)


def check_status(r, url: str, api_key_env: str | None) -> None:
    """Raise the kit's error for a 401/403, 404 or any other failure status (the body is read first)."""
    if r.status_code < 400:
        return
    try:
        r.read()
        detail = r.text[:300]
    except Exception:   # noqa: BLE001 - the status says enough
        detail = ""
    if r.status_code in (401, 403):
        how = (f"Check the key in the environment variable {api_key_env}." if api_key_env else
               "This server needs an API key: pass api_key_env='NAME_OF_THE_VARIABLE' holding it.")
        raise EndpointAuthError(f"{url} refused the request ({r.status_code}: missing or wrong API key).", how)
    if r.status_code == 404:
        raise EndpointError(f"{r.request.url} was not found (404) — not an OpenAI-compatible API at this URL, "
                            f"or an unknown model. {detail}",
                            "Check base_url (servers answer under /v1) and the model id (served_models()).")
    raise EndpointError(f"{url} answered {r.status_code}: {detail}", "Check the request and the server's log.")


def parse_sse_line(line: str) -> dict | None:
    """One line of an OpenAI-compatible stream → {"text", "usage", "timings", "done"} (None: nothing in it)."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if data == "[DONE]":
        return {"done": True}
    chunk = json.loads(data)
    if "error" in chunk:
        raise EndpointError(f"The server reported an error mid-stream: {chunk['error']}", "Check the server's log.")
    out: dict = {}
    for choice in chunk.get("choices") or []:
        out["text"] = out.get("text", "") + ((choice.get("delta") or {}).get("content") or "")
    if chunk.get("usage"):
        u = chunk["usage"]
        out["usage"] = Usage(u.get("prompt_tokens"), u.get("completion_tokens"))
    if chunk.get("timings"):       # llama.cpp's own
        t = chunk["timings"]
        out["timings"] = ServerTimings(t.get("prompt_n"), t.get("predicted_n"), _ms(t.get("prompt_ms")),
                                       _ms(t.get("predicted_ms")))
    return out


def parse_ollama_line(line: str) -> dict | None:
    """One NDJSON line of Ollama's /api/chat or /api/generate; the last one carries nanosecond durations."""
    if not line.strip():
        return None
    chunk = json.loads(line)
    if "error" in chunk:
        raise EndpointError(f"Ollama reported an error: {chunk['error']}", "Check `ollama list` and the model name.")
    out: dict = {"text": (chunk.get("message") or {}).get("content") or chunk.get("response") or ""}
    if chunk.get("done"):
        out["done"] = True
        out["usage"] = Usage(chunk.get("prompt_eval_count"), chunk.get("eval_count"))
        out["timings"] = ServerTimings(chunk.get("prompt_eval_count"), chunk.get("eval_count"),
                                       _ns(chunk.get("prompt_eval_duration")), _ns(chunk.get("eval_duration")),
                                       _ns(chunk.get("total_duration")))
    return out


def _ms(v):
    return None if v is None else v / 1e3


def _ns(v):
    return None if v is None else v / 1e9


def remote_card(model: str, card=None) -> ModelCard:
    """The catalog's card when the served model is known there (by `card` or the model id), else a bare one."""
    try:
        return catalog_card(card or model) if not isinstance(card, ModelCard) else card
    except (UnknownModel, LlamalabError):
        if card is not None:
            raise
    return ModelCard(name=model, display=model, family="remote", params=0, active_params=0, layers=0, hidden=0,
                     intermediate=0, heads=0, kv_heads=0, head_dim=0, vocab=0, context=0, chat=True)


class Endpoint(LoadedModel):
    """A served model you generate from like a local one: `generate()`, `stream()`, the Playground, the Arena.

    base_url: the server (…/v1 is added when missing; for api="ollama" the root). model: the id the
    server serves. api_key_env: the NAME of the environment variable holding the key (never the key).
    card: a catalog model this is (for its context and facts), else the model id is looked up.
    check: ask the server at once whether it serves `model` (a clear error now rather than later).
    Peak memory is absent on every Generation (`peak_memory_kind` says "not measured (remote engine)").
    """

    def __init__(self, base_url: str, model: str, api_key_env: str | None = None, *, api: str = "openai",
                 card=None, timeout: float = 60.0, check: bool = True):
        t0 = time.perf_counter()
        c = remote_card(model, card)
        engine = EndpointEngine(base_url, model, api_key_env, api, timeout, c.context)
        if check:
            engine.check_model()
        est = Estimate(model=c.name, scheme=REMOTE_SCHEME.name, context=c.context, batch=1, mode="inference",
                       kv_dtype="", device="remote", breakdown={"weights": 0, "overhead": 0},
                       notes=("memory is on the server; not estimated here",))
        super().__init__(engine=engine, card=c, scheme=REMOTE_SCHEME, device="remote",
                         load_s=time.perf_counter() - t0, weights_memory_bytes=None, load_memory_delta_bytes=None,
                         load_memory_kind=REMOTE_MEMORY_KIND, estimate=est, load_peak_bytes=None,
                         path=engine.base, backend="endpoint")

    @property
    def base_url(self) -> str:
        return self.engine.base

    def served_models(self) -> list[str]:
        return self.engine.served_models()

    def __repr__(self) -> str:
        key = f", api_key_env={self.engine.api_key_env!r}" if self.engine.api_key_env else ""
        return f"Endpoint({self.engine.base!r}, model={self.engine.model_id!r}, api={self.engine.api!r}{key})"
