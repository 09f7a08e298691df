"""A model on a server, as a LoadedModel: `connect()` picks the engine for the wire protocol and
asks the server whether it serves the model. The card, scheme and estimate are those of the catalog
when it knows the model (or the caller says which it is), else absent — nothing is invented.

    m = llamalab.connect("http://127.0.0.1:8080", "smol", api_key_env="MY_KEY")
    m.generate("Hi")     # the same Generation as a local model: TTFT, decode tokens/s;
                         # peak memory absent
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

from .. import catalog
from ..catalog import ModelCard
from ..core import memory, validate
from ..core.errors import LlamalabError
from ..core.settings import with_changes
from ..engines.base import Sampling, check_prompt
from ..engines.http import EndpointSettings, check_url
from ..engines.ollama import OllamaEngine
from ..engines.openai import HOSTS, OpenAIEngine
from ..engines.preview import RequestPreview, redacted_headers
from .loaded import LoadedModel

APIS = {"openai": OpenAIEngine, "ollama": OllamaEngine}


class ServedProcess:
    """A model server this process started (`llamalab.serve()` makes one): what a load test reads
    besides the requests — the process's memory by PID and the server's own counters."""

    pid: int

    def connect(self) -> LoadedModel:
        raise NotImplementedError

    def metrics(self) -> dict[str, float]:
        raise NotImplementedError


def connect(
    base_url: str,
    model: str,
    api_key_env: str | None = None,
    *,
    api: str = "openai",
    card=None,
    scheme: str | None = None,
    timeout: float | None = None,
    check: bool = True,
    settings: EndpointSettings | None = None,
    key: Callable[[], str] | None = None,
    **overrides,
) -> LoadedModel:
    """A served model you generate from like a local one: `generate()`, `stream()`,
    the Playground, the Arena.

    base_url: the server (…/v1 is added for OpenAI-compatible servers; Ollama: its root). model: the
    id the server serves. api_key_env: the NAME of the environment variable holding the key
    (never the key).
    api: "openai" (any OpenAI-compatible server) or "ollama" (its native API). card / scheme: the
    catalog model and scheme this is, when you know (else the model id is looked up; a model the
    catalog does not know has no card). check: ask the server now whether it serves `model`
    (a clear error now, not later). settings (an EndpointSettings) and/or its fields as keywords:
    timeout (seconds the server may stay silent), deadline_s (one request in all), retries,
    backoff_s, max_retry_wait_s, retry_statuses (429/503 are retried, honouring Retry-After),
    keep_alive, server (which extra fields it takes). key: for a server this process started, a
    function returning its key (held in memory; `Server.connect()` passes it). Every failure raises
    an EndpointError; `model.engine.stats` counts requests, retries, reconnects and connections.
    Peak memory is absent on every Generation (its memory is on the server), except through
    `Server.connect()`, which samples the server process it started.
    """
    validate.choice("api", api, APIS)
    t0 = time.perf_counter()
    c = _card(model, card)
    engine = APIS[api](
        base_url,
        model,
        api_key_env,
        timeout,
        c.context if c else 0,
        settings=settings,
        key=key,
        **overrides,
    )
    if check:
        engine.check_model()
    return LoadedModel(
        engine=engine,
        card=c,
        scheme=catalog.scheme(scheme) if scheme else None,
        device="remote",
        load_s=time.perf_counter() - t0,
        weights_memory_bytes=None,
        load_memory_delta_bytes=None,
        load_memory_kind=memory.REMOTE,
        estimate=None,
        load_peak_bytes=None,
        path=engine.base,
        backend=api,
        served_name=model,
    )


def _card(model: str, card) -> ModelCard | None:
    """The catalog's card: the one named by `card`, else the model id's if the catalog
    knows it, else None."""
    if card is not None:
        return catalog.card(card)
    try:
        return catalog.card(model)
    except LlamalabError:
        return None


def served_models(
    base_url: str, api_key_env: str | None = None, *, api: str = "openai", timeout: float = 10.0
) -> list[str]:
    """The model ids a server lists (GET /v1/models, or Ollama's /api/tags)."""
    validate.choice("api", api, APIS)
    return APIS[api](base_url, "", api_key_env, timeout).served_models()


def request_preview(
    base_url: str,
    model: str,
    prompt,
    api_key_env: str | None = None,
    *,
    api: str = "openai",
    system: str | None = None,
    sampling: Sampling | None = None,
    server: str = "auto",
    **sampling_fields,
) -> RequestPreview:
    """The chat request `connect(base_url, model, api_key_env, api=api).generate(prompt, ...)`
    would send — URL, headers, JSON body, built by the same engine — without connecting, and
    without reading the key: the Authorization header names the variable (and whether it is
    set), never its value. `server`: what answers there, as connect's setting (fields beyond
    OpenAI's API go only to servers known to take them; "auto" guesses from the host only)."""
    validate.choice("api", api, APIS)
    check_prompt(prompt, system, None)
    if server == "auto":  # guess from the host only: nothing is sent from here
        server = HOSTS.get(urlsplit(check_url(base_url)).hostname or "", "generic")
    engine = APIS[api](base_url, model, None, server=server)
    s = with_changes(sampling or Sampling(), **sampling_fields)
    shown = engine.request_preview(prompt, s, system)
    return RequestPreview(shown.method, shown.url, redacted_headers(api_key_env), shown.body)
