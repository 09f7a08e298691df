"""llamalab.serve() and llamalab.connect() against llama.cpp's real server on loopback: queries,
reliability (32 concurrent streams, a server killed mid-run) and every failure's clear error."""

import os
import signal
import socket
import threading

import psutil
import pytest

import llamalab
from llamalab import connect, load_test
from llamalab.core import memory
from llamalab.engines.http import EndpointAuthError, UnknownServedModel
from llamalab.serving import server as server_module
from llamalab.serving.server import ServerFailed, serve

pytestmark = [pytest.mark.server, pytest.mark.slow]
PROMPTS = ["What is the capital of France?", "Name three colours.", "Count to five."]


def test_serves_on_loopback_with_a_key_and_answers_like_a_model(server):
    conns = psutil.Process(server.pid).net_connections(kind="tcp")
    listening = [c.laddr for c in conns if c.status == psutil.CONN_LISTEN]
    assert listening and all(a.ip == "127.0.0.1" for a in listening)
    assert (
        server.api_key
        and server.api_key not in repr(server)
        and server.api_key not in repr(server.connect())
    )
    g = server.connect().generate("What is the capital of France?", max_new_tokens=8)
    assert g.text and g.new_tokens == 8 and g.finish_reason == "length" and g.prompt_tokens > 5
    assert g.ttft_s > 0 and g.decode_tokens_per_s > 0
    assert g.peak_memory_kind == memory.SERVER_PEAK and g.peak_memory_bytes > 50e6  # the server's
    pieces = list(server.connect().stream("Say hi", max_new_tokens=4))
    assert all(isinstance(p, str) for p in pieces[:-1]) and pieces[-1].text == "".join(pieces[:-1])
    assert server.rss_bytes() > 50e6
    assert server.metrics()["llamacpp:tokens_predicted_total"] >= 12
    assert any(e["event"] == "listening" for e in server.task.events)  # the server process said so
    assert server.port in server_module.listening_ports(server.pid)  # it bound the port it reported
    assert server.api_key not in str(os.environ) and server.api_key not in server.tail(200)


def test_greedy_is_deterministic_across_requests(server):
    a = server.connect().generate("Name three colours.", max_new_tokens=12).text
    b = server.connect().generate("Name three colours.", max_new_tokens=12).text
    assert a == b


def test_32_concurrent_streams_each_complete_or_record_an_error(server):
    timeout = 60.0
    r = load_test(server, PROMPTS, concurrency=[32], requests=32, max_new_tokens=8, timeout=timeout)
    rec = r.records
    assert len(rec) == 32
    assert ((rec["ok"]) | (rec["error"].str.len() > 0)).all()
    assert (rec["e2e_s"] <= timeout + 5).all()
    assert rec["ok"].mean() >= 0.9, rec["error"].tolist()
    assert (rec.loc[rec["ok"], "output_tokens"] == 8).all()
    s = r.summary.iloc[0]
    assert s["completed"] == rec["ok"].sum() and s["output_throughput"] > 0
    assert s["server_output_tokens"] >= 8 * s["completed"]  # llama.cpp's own counter agrees
    assert s["ttft_p50_s"] <= s["ttft_p90_s"] <= s["ttft_p99_s"]
    assert server.alive and server.connect().generate("Hi", max_new_tokens=2).new_tokens == 2


def test_missing_or_wrong_key_is_refused_clearly(server):
    with pytest.raises(EndpointAuthError, match="401"):
        connect(server.url, server.model_id)
    os.environ["LLAMALAB_TEST_WRONG_KEY"] = "not-the-key"
    try:
        with pytest.raises(EndpointAuthError, match="LLAMALAB_TEST_WRONG_KEY"):
            connect(server.url, server.model_id, api_key_env="LLAMALAB_TEST_WRONG_KEY")
    finally:
        del os.environ["LLAMALAB_TEST_WRONG_KEY"]
    with pytest.raises(EndpointAuthError, match="not set"):
        connect(server.url, server.model_id, api_key_env="LLAMALAB_TEST_UNSET_KEY")


def test_unknown_model_name_names_the_served_one(server, monkeypatch):
    monkeypatch.setenv("LLAMALAB_TEST_SERVER_KEY", server.api_key)
    with pytest.raises(UnknownServedModel) as e:
        connect(server.url, "smollm2-135n", api_key_env="LLAMALAB_TEST_SERVER_KEY")
    assert server.model_id in str(e.value)


def test_a_server_killed_mid_run_shows_as_errors_not_a_crash():
    with serve("default", scheme="q4_k_m", parallel=4, context=256, threads=1) as s:
        first = threading.Event()
        killer = threading.Thread(target=lambda: first.wait(60) and os.kill(s.pid, signal.SIGKILL))
        killer.start()
        r = load_test(
            s,
            PROMPTS,
            concurrency=[4],
            requests=12,
            max_new_tokens=64,
            timeout=30,
            on_event=lambda e: first.set(),
        )
        killer.join()
        assert not s.alive
    rec = r.records
    assert (~rec["ok"]).sum() >= 1
    assert rec.loc[~rec["ok"], "error"].str.contains("Endpoint").all()
    assert (rec["e2e_s"] < 35).all()


def test_prompt_cache_off_makes_every_request_prefill_its_whole_prompt(server):
    """llama.cpp's counters: with the cache on (the module's server) a repeated prompt reuses the
    slot's KV; with prompt_cache=False nothing is reused and every prompt token is pre-filled."""

    def prefill(s) -> tuple[float, float, int]:
        m0 = s.metrics()
        g = s.connect().generate("Name three colours.", max_new_tokens=2)
        m1 = s.metrics()
        return (
            m1["llamacpp:prompt_tokens_total"] - m0["llamacpp:prompt_tokens_total"],
            m1["llamacpp:prompt_tokens_cached_total"] - m0["llamacpp:prompt_tokens_cached_total"],
            g.prompt_tokens,
        )

    prefill(server)
    done, cached, n = prefill(server)
    assert cached > 0 and done + cached == n
    with serve(
        "default", scheme="q4_k_m", parallel=1, context=256, threads=1, prompt_cache=False
    ) as s:
        assert [prefill(s) for _ in range(2)] == [(n, 0, n)] * 2


def test_a_broken_gguf_is_refused_before_a_process_starts(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(llamalab.InvalidSetting, match="not a readable GGUF"):
        serve(str(bad), threads=1)


def test_a_server_that_dies_or_never_becomes_healthy_is_a_clear_error(monkeypatch):
    """The port asked for is taken by another program: the server process ends; a server whose
    /health never says ok (a model still loading) runs out of start_timeout. Either way nothing is
    left running."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerFailed, match="ended") as e:
            serve("default", scheme="q4_k_m", threads=1, start_timeout=60, port=port)
    assert e.value.fix and e.value.log_tail
    monkeypatch.setattr(server_module, "_healthy", lambda server: False)
    with pytest.raises(ServerFailed, match="not (listening|healthy) within"):  # load time varies
        serve("default", scheme="q4_k_m", threads=1, start_timeout=3)
    after = {
        p.pid
        for p in psutil.Process().children(recursive=True)
        if p.status() != psutil.STATUS_ZOMBIE
    }
    assert after <= before


def test_compare_measures_a_served_model_beside_an_in_process_one(server, monkeypatch):
    from llamalab import compare, load

    monkeypatch.setenv("LLAMALAB_TEST_SERVER_KEY", server.api_key)

    def loader(model, scheme, device):
        if (
            scheme == "served"
        ):  # a server that keeps its format to itself: no scheme, no card invented
            return connect(server.url, server.model_id, api_key_env="LLAMALAB_TEST_SERVER_KEY")
        return load(model, scheme, device=device, n_threads=1)

    df = compare(
        "default",
        ["q4_k_m", "served"],
        ["What is the capital of France?"],
        max_new_tokens=8,
        warmup=0,
        quality=False,
        load=loader,
    )
    assert list(df["scheme"]) == ["q4_k_m", "served"] and df["error"].isna().all(), df
    served = df[df["engine"] == "openai-compatible"].iloc[0]
    assert served["new_tokens"] == 8 and served["decode_tokens_per_s"] > 0
    assert (
        served["peak_memory_bytes"] != served["peak_memory_bytes"]
    )  # not measured here: NaN, not 0
