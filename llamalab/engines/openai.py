"""Any OpenAI-compatible chat API as an Engine: llama.cpp's server, vLLM, TGI, Together, Hugging
Face endpoints, a LiteLLM proxy, Ollama's /v1. Server-sent events, `usage` at the end of the
stream."""

from __future__ import annotations

import json

from .base import Sampling, Usage
from .http import EndpointError, HttpEngine, ServerTimings


class OpenAIEngine(HttpEngine):
    name = "openai-compatible"
    CHAT_PATH = "/chat/completions"

    @staticmethod
    def api_base(url: str) -> str:
        """Requests go under `…/v1` (added when missing)."""
        return url if url.endswith("/v1") else url + "/v1"

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
        if s.top_k:
            body["top_k"] = (
                s.top_k
            )  # llama.cpp, vLLM and TGI accept it; OpenAI ignores unknown keys
        if s.seed is not None:
            body["seed"] = s.seed
        if s.min_new_tokens and s.min_new_tokens >= s.max_new_tokens:
            body["ignore_eos"] = True  # exactly max_tokens (llama.cpp, vLLM)
        return body

    def parse_line(self, line: str) -> dict | None:
        return parse_sse_line(line)

    def served_models(self) -> list[str]:
        """GET /v1/models: `{"data": [...]}`, or a bare list (some providers)."""
        body = self.get_json("/models")
        ids = []
        for m in body if isinstance(body, list) else body.get("data", []):
            ids += [m.get("id", ""), *m.get("aliases", [])]
        return [i for i in ids if i]


def parse_sse_line(line: str) -> dict | None:
    """One line of an OpenAI-compatible stream → {"text", "usage", "timings",
    "done"} (None: nothing in it)."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if data == "[DONE]":
        return {"done": True}
    chunk = json.loads(data)
    if "error" in chunk:
        raise EndpointError(
            f"The server reported an error mid-stream: {chunk['error']}", "Check the server's log."
        )
    out: dict = {}
    for choice in chunk.get("choices") or []:
        out["text"] = out.get("text", "") + ((choice.get("delta") or {}).get("content") or "")
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


def _ms(v):
    return None if v is None else v / 1e3
