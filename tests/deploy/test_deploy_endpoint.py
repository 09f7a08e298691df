"""The OpenAI-compatible and Ollama engines without a server: URLs, stream parsing, keys,
clear errors."""

import pytest

from llamalab import InvalidSetting, connect
from llamalab.engines.base import Concurrent
from llamalab.engines.http import EndpointAuthError, EndpointUnreachable
from llamalab.engines.ollama import OllamaEngine, parse_ollama_line
from llamalab.engines.openai import OpenAIEngine, parse_sse_line


def test_base_url_gets_v1_for_openai_and_the_root_for_ollama():
    assert OpenAIEngine("http://127.0.0.1:8080", "m").base == "http://127.0.0.1:8080/v1"
    assert OpenAIEngine("https://api.together.xyz/v1/", "m").base == "https://api.together.xyz/v1"
    assert OllamaEngine("http://localhost:11434/v1", "m").base == "http://localhost:11434"
    with pytest.raises(InvalidSetting, match="not an http"):
        OpenAIEngine("127.0.0.1:8080", "m")
    assert isinstance(
        OpenAIEngine("http://x", "m"), Concurrent
    )  # a server takes concurrent requests


def test_sse_lines():
    assert parse_sse_line(": keep-alive") is None
    assert parse_sse_line("data: [DONE]") == {"done": True}
    e = parse_sse_line('data: {"choices":[{"delta":{"content":"Par"},"index":0}]}')
    assert e["text"] == "Par"
    u = parse_sse_line(
        'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3},'
        '"timings":{"prompt_n":7,"prompt_ms":50.0,"predicted_n":3,"predicted_ms":30.0}}'
    )
    assert (u["usage"].prompt_tokens, u["usage"].new_tokens) == (7, 3) and u[
        "timings"
    ].decode_s == pytest.approx(0.03)
    with pytest.raises(Exception, match="mid-stream"):
        parse_sse_line('data: {"error": {"message": "boom"}}')


def test_ollama_native_lines_with_nanosecond_durations():
    assert (
        parse_ollama_line('{"message":{"role":"assistant","content":"Hi"},"done":false}')["text"]
        == "Hi"
    )
    last = parse_ollama_line(
        '{"message":{"role":"assistant","content":""},"done":true,"total_duration":2000000000,'
        '"prompt_eval_count":12,"prompt_eval_duration":100000000,"eval_count":40,'
        '"eval_duration":1000000000}'
    )
    assert (
        last["done"]
        and last["usage"].new_tokens == 40
        and last["timings"].decode_s == pytest.approx(1.0)
    )
    assert parse_ollama_line('{"response":"x","done":false}')["text"] == "x"  # /api/generate


def test_key_is_read_from_the_environment_and_never_shown(monkeypatch):
    monkeypatch.setenv("LLAMALAB_TEST_KEY", "sk-very-secret")
    e = OpenAIEngine("http://127.0.0.1:9", "m", api_key_env="LLAMALAB_TEST_KEY")
    assert e.headers() == {"Authorization": "Bearer sk-very-secret"}
    assert "sk-very-secret" not in repr(e) and "sk-very-secret" not in str(vars(e))
    monkeypatch.delenv("LLAMALAB_TEST_KEY")
    with pytest.raises(EndpointAuthError, match="not set"):
        OpenAIEngine("http://127.0.0.1:9", "m", api_key_env="LLAMALAB_TEST_KEY")


def test_wrong_port_is_a_clear_error():
    from llamalab.serving.server import free_port

    with pytest.raises(EndpointUnreachable, match="Cannot connect") as e:
        connect(f"http://127.0.0.1:{free_port()}", "x")
    assert "server.url" in e.value.fix


def test_a_served_model_has_no_invented_card_or_estimate():
    m = connect("http://127.0.0.1:9", "some-model-the-catalog-does-not-know", check=False)
    assert m.card is None and m.estimate is None and m.scheme is None
    assert m.name == "some-model-the-catalog-does-not-know" and m.scheme_name == "served"
    assert m.to_dict()["estimated_weights_bytes"] is None and m.estimate_error_pct is None
    known = connect("http://127.0.0.1:9", "llama-3.1-8b-instruct", check=False)
    assert known.card.name == "llama-3.1-8b" and known.engine.context_length == known.card.context
    assert connect("http://127.0.0.1:9", "m", api="ollama", check=False).engine.name == "ollama"
    with pytest.raises(InvalidSetting, match="api"):
        connect("http://127.0.0.1:9", "m", api="grpc", check=False)
