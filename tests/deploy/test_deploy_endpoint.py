"""The OpenAI-compatible / Ollama client without a server: URLs, stream parsing, keys, clear errors."""
import pytest

from llamalab.runtime.endpoint import (
    EndpointAuthError,
    EndpointEngine,
    EndpointUnreachable,
    api_base,
    parse_ollama_line,
    parse_sse_line,
)


def test_base_url_gets_v1_for_openai_and_the_root_for_ollama():
    assert api_base("http://127.0.0.1:8080") == "http://127.0.0.1:8080/v1"
    assert api_base("https://api.together.xyz/v1/") == "https://api.together.xyz/v1"
    assert api_base("http://localhost:11434/v1", "ollama") == "http://localhost:11434"
    with pytest.raises(Exception, match="not an http"):
        api_base("127.0.0.1:8080")


def test_sse_lines():
    assert parse_sse_line(": keep-alive") is None
    assert parse_sse_line("data: [DONE]") == {"done": True}
    e = parse_sse_line('data: {"choices":[{"delta":{"content":"Par"},"index":0}]}')
    assert e["text"] == "Par"
    u = parse_sse_line('data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3},'
                       '"timings":{"prompt_n":7,"prompt_ms":50.0,"predicted_n":3,"predicted_ms":30.0}}')
    assert (u["usage"].prompt_tokens, u["usage"].new_tokens) == (7, 3) and u["timings"].decode_s == pytest.approx(0.03)
    with pytest.raises(Exception, match="mid-stream"):
        parse_sse_line('data: {"error": {"message": "boom"}}')


def test_ollama_native_lines_with_nanosecond_durations():
    assert parse_ollama_line('{"message":{"role":"assistant","content":"Hi"},"done":false}')["text"] == "Hi"
    last = parse_ollama_line('{"message":{"role":"assistant","content":""},"done":true,"total_duration":2000000000,'
                             '"prompt_eval_count":12,"prompt_eval_duration":100000000,"eval_count":40,'
                             '"eval_duration":1000000000}')
    assert last["done"] and last["usage"].new_tokens == 40 and last["timings"].decode_s == pytest.approx(1.0)
    assert parse_ollama_line('{"response":"x","done":false}')["text"] == "x"      # /api/generate


def test_key_is_read_from_the_environment_and_never_shown(monkeypatch):
    monkeypatch.setenv("LLAMALAB_TEST_KEY", "sk-very-secret")
    e = EndpointEngine("http://127.0.0.1:9", "m", api_key_env="LLAMALAB_TEST_KEY")
    assert e.headers() == {"Authorization": "Bearer sk-very-secret"}
    assert "sk-very-secret" not in repr(e) and "sk-very-secret" not in str(vars(e))
    monkeypatch.delenv("LLAMALAB_TEST_KEY")
    with pytest.raises(EndpointAuthError, match="not set"):
        EndpointEngine("http://127.0.0.1:9", "m", api_key_env="LLAMALAB_TEST_KEY")


def test_wrong_port_is_a_clear_error():
    from llamalab import Endpoint
    from llamalab.deploy.server import free_port
    with pytest.raises(EndpointUnreachable, match="Cannot connect") as e:
        Endpoint(f"http://127.0.0.1:{free_port()}", "x")
    assert "server.url" in e.value.fix
