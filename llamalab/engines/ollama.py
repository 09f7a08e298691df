"""Ollama's native chat API (/api/chat, newline-delimited JSON) as an Engine: its last line carries
the server's own token counts and nanosecond durations."""

from __future__ import annotations

import json

from .base import Sampling, Usage
from .http import EndpointError, HttpEngine, ServerTimings


class OllamaEngine(HttpEngine):
    name = "ollama"
    CHAT_PATH = "/api/chat"

    @staticmethod
    def api_base(url: str) -> str:
        """Ollama answers at its root (a trailing /v1 is its OpenAI-compatible face:
        dropped here)."""
        return url.removesuffix("/v1")

    def request_body(self, messages, s: Sampling) -> dict:
        options = {"num_predict": s.max_new_tokens, "temperature": s.temperature, "top_p": s.top_p}
        if s.top_k:
            options["top_k"] = s.top_k
        if s.seed is not None:
            options["seed"] = s.seed
        return {"model": self.model_id, "messages": messages, "stream": True, "options": options}

    def parse_line(self, line: str) -> dict | None:
        return parse_ollama_line(line)

    def served_models(self) -> list[str]:
        """GET /api/tags."""
        return [m.get("name", "") for m in self.get_json("/api/tags").get("models", [])]

    def serves(self, served: list[str]) -> bool:
        return self.model_id in served or self.model_id + ":latest" in served


def parse_ollama_line(line: str) -> dict | None:
    """One NDJSON line of Ollama's /api/chat or /api/generate; the last one carries
    nanosecond durations."""
    if not line.strip():
        return None
    chunk = json.loads(line)
    if "error" in chunk:
        raise EndpointError(
            f"Ollama reported an error: {chunk['error']}", "Check `ollama list` and the model name."
        )
    out: dict = {"text": (chunk.get("message") or {}).get("content") or chunk.get("response") or ""}
    if chunk.get("done"):
        out["done"] = True
        out["usage"] = Usage(chunk.get("prompt_eval_count"), chunk.get("eval_count"))
        out["timings"] = ServerTimings(
            chunk.get("prompt_eval_count"),
            chunk.get("eval_count"),
            _ns(chunk.get("prompt_eval_duration")),
            _ns(chunk.get("eval_duration")),
            _ns(chunk.get("total_duration")),
        )
    return out


def _ns(v):
    return None if v is None else v / 1e9
