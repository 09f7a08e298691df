"""Any OpenAI-compatible chat API as an Engine: llama.cpp's server, vLLM, TGI, Together, Hugging
Face endpoints, a LiteLLM proxy, Ollama's /v1. Server-sent events, `usage` at the end of the
stream.

A failure inside a stream is an error, in each of the dialects servers use (research notes,
serving-facts.md §4.1):
- `data: {"error":{"code":500,"message":"…","type":"server_error"}}` then the end, no `[DONE]`
  (llama.cpp since PR ggml-org/llama.cpp#16109, 2025-09; OpenAI's own shape);
- `error: {"code":…,"message":"…","type":"…"}` then `data: [DONE]` (llama.cpp before that PR: a
  non-standard SSE field, at HTTP 200);
- `event: error` then `data: {…}` (llama.cpp's Anthropic-style endpoint; the SSE event name).
A stream must end with `data: [DONE]` or carry a finish reason; one that just stops is broken off.
"""

from __future__ import annotations

import json
import warnings
from urllib.parse import urlsplit

from .base import Sampling, TokenLogprob, TokenLogprobs, Usage
from .http import EndpointError, EndpointStreamError, HttpEngine, ServerTimings

# Fields beyond OpenAI's chat API, and the servers known to take them; any other server gets
# only OpenAI's fields (OpenAI's API answers 400 to unknown ones: from memory, not checked here).
# - ignore_eos: llama.cpp (tools/server/README.md, options of /completion that
#   /v1/chat/completions reads too), vLLM (its extra sampling parameters).
# - top_k: the same two, and Together (its chat-completions API takes top_k: from memory, not
#   checked here).
EXTRA_FIELDS = {
    "ignore_eos": frozenset({"llama.cpp", "vllm"}),
    "top_k": frozenset({"llama.cpp", "vllm", "together"}),
}
# /v1/models' `owned_by` as servers write it for themselves: llama.cpp `{"owned_by", "llamacpp"}`
# (tools/server), vLLM `owned_by: str = "vllm"` (its protocol's ModelCard).
OWNED_BY = {"llamacpp": "llama.cpp", "vllm": "vllm"}
HOSTS = {"api.together.xyz": "together", "api.openai.com": "openai"}


class OpenAIEngine(HttpEngine, TokenLogprobs):
    name = "openai-compatible"
    CHAT_PATH = "/chat/completions"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        server = self.settings.server
        self._server = server if server != "auto" else HOSTS.get(urlsplit(self.base).hostname)
        self._warned: set[str] = set()
        self.extra_body: dict = {}  # fields every request carries (a served adapter's `lora`)

    @staticmethod
    def api_base(url: str) -> str:
        """Requests go under `…/v1` (added when missing)."""
        return url if url.endswith("/v1") else url + "/v1"

    @property
    def server(self) -> str:
        """What answers at the URL ('llama.cpp', 'vllm', 'together', 'openai' or 'generic'):
        `settings.server`, else the host, else /v1/models' owned_by or a Server header seen,
        else asked once now (GET /v1/models)."""
        if self._server is None:
            try:
                self.served_models()
            except EndpointError:
                pass
            self._server = self._server or "generic"
        return self._server

    def saw_response(self, r) -> None:
        if self._server is None and r.headers.get("server", "").startswith("llama.cpp"):
            self._server = "llama.cpp"  # cpp-httplib answers with `Server: llama.cpp`

    def request_body(self, messages, s: Sampling) -> dict:
        body = {
            "model": self.model_id,
            "messages": messages,
            "max_tokens": s.max_new_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if s.seed is not None:
            body["seed"] = s.seed
        extras = {}
        if s.top_k:
            extras["top_k"] = s.top_k
        if s.min_new_tokens and s.min_new_tokens >= s.max_new_tokens:
            extras["ignore_eos"] = True  # exactly max_tokens
        for key, value in extras.items():
            if self.server in EXTRA_FIELDS[key]:
                body[key] = value
            else:
                self._warn_dropped(key)
        return {**body, **self.extra_body}

    def _warn_dropped(self, key: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        what = {
            "ignore_eos": "min_new_tokens (ignore_eos): answers may end before max_new_tokens",
            "top_k": "top_k: sampling uses the server's own",
        }[key]
        warnings.warn(
            f"Not sent to {self.base} ({self.server}): {what}. Only "
            f"{', '.join(sorted(EXTRA_FIELDS[key]))} are known to take {key}; pass "
            f"server='vllm' (or the server it is) to connect() if it does.",
            stacklevel=4,
        )

    def prompt_ids(self, messages) -> list[int] | None:
        """The token ids the server reads for `messages`: llama.cpp's own chat template
        (POST /apply-template) and tokenizer (POST /tokenize, special tokens parsed, BOS added as
        for a chat request); None for a server that offers neither (only llama.cpp's does)."""
        if self.server != "llama.cpp":
            return None
        root = self.base.removesuffix("/v1")
        prompt = self.post_json(root + "/apply-template", {"messages": messages})["prompt"]
        body = {"content": prompt, "add_special": True, "parse_special": True}
        return list(self.post_json(root + "/tokenize", body)["tokens"])

    def answer_logprobs(self, messages, sampling: Sampling, alternatives: int):
        """One answer, not streamed, with OpenAI's `logprobs: true, top_logprobs: k`: each token's
        log-probability before sampling (llama.cpp: the softmax of the logits, ids included;
        its `post_sampling_probs` would give greedy's 1.0 instead) and the k most likely tokens.
        A server that sends none raises EndpointError."""
        body = self.request_body(messages, sampling)
        body.update(stream=False, logprobs=True, top_logprobs=alternatives)
        body.pop("stream_options", None)
        answer = self.post_json(self.CHAT_PATH, body)
        choice = ((answer.get("choices") or [{}]) if isinstance(answer, dict) else [{}])[0]
        content = (choice.get("logprobs") or {}).get("content")
        if not content:
            raise EndpointError(
                f"{self.base} ({self.server}) sent no per-token logprobs for the request.",
                "This server does not offer logprobs / top_logprobs on chat completions: inspect "
                "a local model (llamalab.load) or serve it with llamalab.serve() (llama.cpp).",
            )
        try:
            tokens = [served_token(t) for t in content]
        except (AttributeError, KeyError, TypeError, ValueError):
            raise EndpointError(
                f"{self.base} sent per-token logprobs in a shape the kit does not read: "
                f"{json.dumps(content)[:160]}.",
                "Expected OpenAI's {token, logprob, top_logprobs: [...]} per token; inspect a "
                "local model (llamalab.load) instead.",
            ) from None
        return tokens, choice.get("finish_reason") or ""

    def parse_line(self, line: str) -> dict | None:
        return parse_sse_line(line)

    def stream_parser(self):
        return SSEParser().feed

    def served_models(self) -> list[str]:
        """GET /v1/models, in each shape providers use: OpenAI's `{"data": [...]}`, Together's
        bare list `[...]`, llama.cpp's `{"models": [...], "data": [...]}`."""
        body = self.get_json("/models")
        items = model_items(body, self.base + "/models")
        if self._server is None:
            owners = {m.get("owned_by") for m in items if isinstance(m, dict)}
            self._server = next((OWNED_BY[o] for o in owners if o in OWNED_BY), None)
        return model_ids(items)


def served_token(t: dict) -> TokenLogprob:
    """One entry of `choices[0].logprobs.content` (OpenAI's shape; llama.cpp adds `id`)."""
    return TokenLogprob(
        t.get("id"),
        t.get("token", ""),
        float(t["logprob"]),
        tuple((a.get("id"), a.get("token", ""), float(a["logprob"])) for a in t["top_logprobs"]),
    )


def model_items(body, url: str) -> list:
    """The list of models in a /v1/models answer, whatever its shape."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in ("data", "models"):
            if isinstance(body.get(key), list):
                return body[key]
    raise EndpointError(
        f"{url} answered something that is not a model list: {json.dumps(body)[:160]}.",
        "Check base_url: an OpenAI-compatible server lists its models at …/v1/models.",
    )


def model_ids(items: list) -> list[str]:
    """Ids (and llama.cpp's aliases) of model entries: dicts with `id` (or `name`, `model`)."""
    ids: list[str] = []
    for m in items:
        if isinstance(m, str):
            ids.append(m)
        elif isinstance(m, dict):
            ids.append(str(m.get("id") or m.get("name") or m.get("model") or ""))
            ids += [str(a) for a in (m.get("aliases") or []) if a]
    return [i for i in dict.fromkeys(ids) if i]


class SSEParser:
    """Server-sent events line by line, for one response: remembers the event name so an
    `event: error` makes its data an error."""

    def __init__(self):
        self.event = ""

    def feed(self, line: str) -> dict | None:
        if not line:
            self.event = ""  # a blank line ends an event
            return None
        if line.startswith("event:"):
            self.event = line[6:].strip()
            return None
        if self.event == "error" and line.startswith("data:"):
            raise stream_error(_json(line[5:]))
        return parse_sse_line(line)


def parse_sse_line(line: str) -> dict | None:
    """One line of an OpenAI-compatible stream → {"text", "usage", "timings", "finished",
    "done"} (None: nothing in it: a comment, a keep-alive ping, another field)."""
    if line.startswith("error:"):  # llama.cpp before 2025-09: `error: {...}`
        raise stream_error(_json(line[6:]))
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if data == "[DONE]":
        return {"done": True}
    chunk = _json(data)
    if not isinstance(chunk, dict):
        raise EndpointStreamError(
            f"The server streamed {data[:120]!r}, not a JSON object.",
            "Is this an OpenAI-compatible server? Check base_url.",
        )
    if "error" in chunk or chunk.get("type") == "error":
        raise stream_error(chunk)
    out: dict = {}
    for choice in chunk.get("choices") or []:
        out["text"] = out.get("text", "") + ((choice.get("delta") or {}).get("content") or "")
        if choice.get("finish_reason"):
            out["finished"] = True
    if chunk.get("usage"):
        u = chunk["usage"]
        out["usage"] = Usage(u.get("prompt_tokens"), u.get("completion_tokens"))
    if chunk.get("timings"):  # llama.cpp's own
        t = chunk["timings"]
        out["timings"] = ServerTimings(
            t.get("prompt_n"),
            t.get("predicted_n"),
            _ms(t.get("prompt_ms")),
            _ms(t.get("predicted_ms")),
        )
    return out


def stream_error(payload) -> EndpointStreamError:
    """The kit's error for an error event: the server's message, type and code."""
    err = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(err, dict):
        text = err.get("message") or json.dumps(err)[:300]
        kind = ", ".join(str(err[k]) for k in ("type", "code") if err.get(k) is not None)
        text = f"{text} ({kind})" if kind else text
    else:
        text = str(err)[:300]
    return EndpointStreamError(
        f"The server reported an error mid-stream: {text}",
        "The answer is incomplete. Check the server's log (server.tail()); a context-size "
        "error means the prompt plus max_new_tokens is more than a slot holds.",
    )


def _json(data: str):
    try:
        return json.loads(data)
    except ValueError:
        raise EndpointStreamError(
            f"The server streamed data that is not JSON: {data.strip()[:120]!r}.",
            "Is this an OpenAI-compatible server? Check base_url and the server's log.",
        ) from None


def _ms(v):
    return None if v is None else v / 1e3
