"""Ollama's native chat API (/api/chat, newline-delimited JSON) as an Engine: its last line carries
the server's own token counts and nanosecond durations (`"done": true`); a stream without that line
was broken off, and a line `{"error": "…"}` is the server's error — both raise."""

from __future__ import annotations

import json

from .base import Sampling, Usage
from .http import EndpointError, EndpointStreamError, HttpEngine, ServerTimings


class OllamaEngine(HttpEngine):
    name = "ollama"
    CHAT_PATH = "/api/chat"

    @staticmethod
    def api_base(url: str) -> str:
        """Ollama answers at its root (a trailing /v1 is its OpenAI-compatible face:
        dropped here)."""
        return url.removesuffix("/v1")

    def request_body(self, messages, s: Sampling) -> dict:
        # Ollama's options (num_predict, top_k, seed, ...) are its own API's; it has no
        # ignore_eos, so min_new_tokens is not sent.
        options = {"num_predict": s.max_new_tokens, "temperature": s.temperature, "top_p": s.top_p}
        if s.top_k:
            options["top_k"] = s.top_k
        if s.seed is not None:
            options["seed"] = s.seed
        return {"model": self.model_id, "messages": messages, "stream": True, "options": options}

    def parse_line(self, line: str) -> dict | None:
        return parse_ollama_line(line)

    def served_models(self) -> list[str]:
        """GET /api/tags: `{"models": [{"name": "llama3.2:latest", "model": ...}, ...]}`."""
        body = self.get_json("/api/tags")
        models = body.get("models") if isinstance(body, dict) else None
        if not isinstance(models, list):
            raise EndpointError(
                f"{self.base}/api/tags answered something that is not Ollama's model list: "
                f"{json.dumps(body)[:160]}.",
                "Check base_url: Ollama answers at its root (e.g. http://localhost:11434); for an "
                "OpenAI-compatible server pass api='openai'.",
            )
        names = [str(m.get("name") or m.get("model") or "") for m in models if isinstance(m, dict)]
        return [n for n in names if n]

    def serves(self, served: list[str]) -> bool:
        return self.model_id in served or self.model_id + ":latest" in served


def parse_ollama_line(line: str) -> dict | None:
    """One NDJSON line of Ollama's /api/chat or /api/generate; the last one carries
    nanosecond durations."""
    if not line.strip():
        return None
    try:
        chunk = json.loads(line)
    except ValueError:
        raise EndpointStreamError(
            f"Ollama streamed a line that is not JSON: {line[:120]!r}.",
            "Is this Ollama's native API? For an OpenAI-compatible server pass api='openai'.",
        ) from None
    if not isinstance(chunk, dict):
        raise EndpointStreamError(
            f"Ollama streamed {line[:120]!r}, not a JSON object.", "Check base_url."
        )
    if "error" in chunk:
        raise EndpointStreamError(
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
