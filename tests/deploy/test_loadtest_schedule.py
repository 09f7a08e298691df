"""The load tester's schedule, against a loopback fake OpenAI-compatible server slower than the
rate: in rate mode every scheduled request gets one record and its latency counts from its
scheduled send time (no coordinated omission); failures are error rows; warm-up is left out;
prompts are distinct; vLLM's and llama.cpp's metric names are both read."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import llamalab
from llamalab import LoadTestSettings, load_test
from llamalab.measure import loadtest as lt

pytest.importorskip("httpx")

# One request at a time (CAPACITY slots), TOKENS chunks TOKEN_S apart: a request takes
# TOKENS × TOKEN_S of the server. A prompt containing FAIL gets a 500. /metrics counts like vLLM
# (labels included); /stats lists the first message of every prompt received.
FAKE_SERVER = r"""
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT_FILE, CAPACITY = sys.argv[1], int(sys.argv[2])
TOKENS, TOKEN_S = int(sys.argv[3]), float(sys.argv[4])
slots = threading.Semaphore(CAPACITY)
lock = threading.Lock()
state = {"prompts": [], "generated": 0, "prompt": 0}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def send_json(self, code, body, kind="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/v1/models":
            return self.send_json(200, {"data": [{"id": "fake"}]})
        if self.path == "/stats":
            with lock:
                return self.send_json(200, state)
        if self.path == "/metrics":
            with lock:
                labels = '{model_name="fake",engine="0"}'
                text = (
                    "# TYPE vllm:generation_tokens counter\n"
                    f'vllm:generation_tokens_total{labels} {state["generated"]}\n'
                    f'vllm:prompt_tokens_total{labels} {state["prompt"]}\n'
                    'vllm:num_requests_waiting{model_name="fake",engine="0"} 0.0\n'
                )
            return self.send_json(200, text.encode(), "text/plain")
        self.send_json(404, {"error": "not found"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        first = body["messages"][0]["content"]
        with lock:
            state["prompts"].append(first)
        if "FAIL" in first:
            return self.send_json(500, {"error": "asked to fail"})
        n = body.get("max_tokens", TOKENS)
        with slots:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            try:
                for i in range(n):
                    time.sleep(TOKEN_S)
                    chunk = {"choices": [{"delta": {"content": f"t{i} "}}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                usage = {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": n}}
                self.wfile.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return  # the client stopped reading (a stopped test)
        with lock:
            state["generated"] += n
            state["prompt"] += 7


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os; os.replace(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
"""

TOKENS, TOKEN_S = 4, 0.025  # 0.1 s of the server per request, one at a time: 10 requests/s at most


class FakeServer:
    def __init__(self, tmp: Path, capacity: int = 1):
        script = tmp / "fake_server.py"
        script.write_text(FAKE_SERVER)
        port_file = tmp / "port"
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(port_file), str(capacity), str(TOKENS), str(TOKEN_S)]
        )
        deadline = time.time() + 20
        while not port_file.exists():
            if time.time() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("the fake server did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text()}"

    def model(self):
        return llamalab.connect(self.url, "fake", check=False)

    def stats(self) -> dict:
        import httpx

        return httpx.get(self.url + "/stats", timeout=5).json()

    def stop(self):
        self.proc.terminate()  # this test's own process, by its PID
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def fake(tmp_path):
    s = FakeServer(tmp_path)
    yield s
    s.stop()


def schedule(rate, seed, level, warmup_s, duration_s, requests):
    rng = np.random.default_rng([seed, level])
    return lt.poisson_schedule(rate, warmup_s, duration_s, requests, rng)


# ---- the schedule itself ------------------------------------------------------------------------
def test_poisson_schedule_is_drawn_in_advance_seeded_and_covers_the_window():
    a = schedule(10.0, 0, 0, 1.0, 4.0, None)
    assert a == schedule(10.0, 0, 0, 1.0, 4.0, None)  # seeded
    assert a != schedule(10.0, 0, 1, 1.0, 4.0, None)  # each level its own arrivals
    times = [t.at_s for t in a]
    assert times[0] == 0 and times == sorted(times) and times[-1] < 5.0
    assert 30 < len(a) < 80  # ~ 10/s × 5 s
    assert all(t.warmup == (t.at_s < 1.0) for t in a)
    counted = schedule(10.0, 0, 0, 1.0, 4.0, 12)
    assert sum(not t.warmup for t in counted) == 12
    assert [t.i for t in counted] == list(range(len(counted)))


# ---- rate mode above capacity -------------------------------------------------------------------
def test_above_capacity_every_scheduled_request_has_a_record_and_latency_counts_from_schedule(
    fake,
):
    """20 requests/s against a server that does 10/s, two client workers: the requests queue in
    the client, and their wait is part of their latency."""
    s = LoadTestSettings(
        rate=(20.0,), requests=30, max_new_tokens=TOKENS, max_concurrency=2, max_duration_s=30
    )
    r = load_test(fake.model(), ["Hi"], s)
    rec = r.records
    planned = schedule(20.0, s.seed, 0, 0.0, s.duration_s, 30)
    assert len(rec) == len(planned) == 30
    assert sorted(rec["request"]) == list(range(30))
    assert np.allclose(sorted(rec["scheduled_s"]), [t.at_s for t in planned])
    assert rec["ok"].all(), rec["error"].tolist()
    # the wait for a worker is in the latency: TTFT ≥ the send delay, and both grow
    assert (rec["send_delay_s"] >= -1e-3).all() and (rec["ttft_s"] >= rec["send_delay_s"]).all()
    assert np.allclose(rec["start_s"], rec["scheduled_s"] + rec["send_delay_s"])
    late = rec.sort_values("scheduled_s").tail(10)
    assert (late["send_delay_s"] > 0.3).all() and late["sent_late"].all()
    service = rec["e2e_s"] - rec["send_delay_s"]  # what a tester timing from the send would see
    assert rec["e2e_s"].median() > 3 * service.median()
    # the server's pace sets the throughput, not the offered rate
    sm = r.summary.iloc[0]
    assert sm["requests"] == sm["sent"] == sm["completed"] == 30 and sm["not_sent"] == 0
    assert sm["sent_late"] >= 10 and sm["send_delay_p90_s"] > 0.3
    assert sm["request_throughput"] < 11 and sm["e2e_p50_s"] > 3 * service.median()


def test_requests_not_sent_before_the_level_ends_are_recorded_as_not_sent(fake):
    s = LoadTestSettings(
        rate=(40.0,), requests=80, max_new_tokens=TOKENS, max_concurrency=1, max_duration_s=1.0
    )
    r = load_test(fake.model(), ["Hi"], s)
    rec = r.records
    assert len(rec) == 80  # the whole schedule (~2 s of it) despite a 1 s level
    assert set(rec["status"]) <= {"ok", "stopped", "not sent"}
    not_sent = rec[rec["status"] == "not sent"]
    assert len(not_sent) > 30 and not_sent["error"].str.contains("max_duration_s").all()
    assert not_sent["ttft_s"].isna().all() and not not_sent["ok"].any()
    sm = r.summary.iloc[0]
    assert sm["requests"] == 80 and sm["not_sent"] == len(not_sent)
    assert sm["sent"] == 80 - sm["not_sent"] and sm["errors"] == sm["sent"] - sm["completed"]


def test_a_stop_event_still_leaves_one_record_per_scheduled_request(fake):
    import threading

    stop = threading.Event()
    seen = []

    def on_event(e):
        seen.append(e)
        if len(seen) == 3:
            stop.set()

    r = load_test(
        fake.model(),
        ["Hi"],
        rate=[20.0],
        requests=25,
        max_new_tokens=TOKENS,
        max_concurrency=1,  # the rest wait in the client when the test is stopped
        on_event=on_event,
        stop_event=stop,
    )
    assert len(r.records) == 25
    assert set(r.records["status"]) <= {"ok", "stopped", "not sent"}
    assert (r.records["status"] == "not sent").sum() >= 10
    assert r.records.loc[r.records["status"] == "not sent", "error"].str.contains("stopped").all()


# ---- failures -----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [{"rate": [20.0]}, {"concurrency": [2]}])
def test_exceptions_from_generate_are_error_rows(fake, mode):
    model = fake.model()
    real = model.generate

    def flaky(prompt, **kw):
        if "#3]" in prompt:
            raise RuntimeError("boom")
        return real(prompt, **kw)

    model.generate = flaky  # an exception no engine would raise: still a row
    r = load_test(model, ["Hi", "FAIL please"], requests=8, max_new_tokens=TOKENS, **mode)
    rec = r.records.set_index("request")
    assert len(rec) == 8
    assert rec.loc[3, "status"] == "failed" and rec.loc[3, "error"] == "RuntimeError: boom"
    server_500 = rec.index[(rec.index % 2 == 1) & (rec.index != 3)]
    assert (rec.loc[server_500, "status"] == "failed").all()
    assert rec.loc[server_500, "error"].str.contains("EndpointError").all()
    assert rec.loc[[0, 2, 4, 6], "ok"].all()
    sm = r.summary.iloc[0]
    assert sm["completed"] == 4 and sm["errors"] == 4 and sm["error_rate"] == 0.5


# ---- steady state -------------------------------------------------------------------------------
def test_duration_based_levels_leave_the_warm_up_out_of_the_summary(fake):
    r = load_test(
        fake.model(),
        ["Hi"],
        concurrency=[2],
        duration_s=1.0,
        warmup_s=0.5,
        max_new_tokens=TOKENS,
    )
    rec = r.records
    warm = rec[rec["warmup"]]
    assert len(warm) >= 2 and (warm["start_s"] < 0.5).all()
    assert (rec.loc[~rec["warmup"], "start_s"] >= 0.5).all()
    assert rec["start_s"].max() < 1.5  # nothing sent after warm-up + duration
    sm = r.summary.iloc[0]
    assert sm["warmup_requests"] == len(warm)
    assert sm["requests"] == len(rec) - len(warm) >= 5
    assert sm["duration_s"] >= 0.9


def test_the_default_is_a_steady_state_not_a_burst():
    s = LoadTestSettings()
    assert s.requests is None and s.duration_s >= 10 and s.warmup > 0
    assert LoadTestSettings(requests=8).warmup == 0  # a fixed count: a burst, as before
    with pytest.raises(llamalab.InvalidSetting, match="max_duration_s"):
        LoadTestSettings(duration_s=100, warmup_s=30, max_duration_s=120)
    with pytest.raises(llamalab.InvalidSetting, match="prompt_words"):
        LoadTestSettings(prompt_words=(10,))


# ---- prompts ------------------------------------------------------------------------------------
def test_prompts_are_distinct_per_level_and_request(fake):
    load_test(fake.model(), ["Same prompt"], concurrency=[1, 2], requests=3, max_new_tokens=2)
    got = fake.stats()["prompts"]
    assert len(got) == 6 and len(set(got)) == 6
    assert all(p.endswith("Same prompt") for p in got)
    assert len({p.split("]")[0] for p in got}) == 6  # they differ from their first characters


def test_synthetic_prompts_have_a_length_distribution():
    s = LoadTestSettings(prompt_words=(5, 40))
    src = lt.PromptSource(None, s)
    prompts = [src(0, "rate", 1.0, i) for i in range(60)]
    lengths = [len(p.split("] ", 1)[1].split()) for p in prompts]
    assert min(lengths) >= 5 and max(lengths) <= 40 and len(set(lengths)) > 10
    assert prompts == [src(0, "rate", 1.0, i) for i in range(60)]  # seeded
    assert src(1, "rate", 2.0, 0) != prompts[0]
    chat = lt.PromptSource([[{"role": "user", "content": "Hi"}]], s)(0, "concurrency", 4, 7)
    assert chat == [{"role": "user", "content": "[concurrency 4 #7] Hi"}]


# ---- the server's own counters ------------------------------------------------------------------
def test_vllm_metric_names_are_read_from_metrics_url(fake):
    r = load_test(
        fake.model(),
        ["Hi"],
        concurrency=[2],
        requests=4,
        max_new_tokens=TOKENS,
        metrics_url=fake.url + "/metrics",
    )
    sm = r.summary.iloc[0]
    assert sm["server_output_tokens"] == 4 * TOKENS and sm["server_prompt_tokens"] == 28
    assert sm["server_output_throughput"] > 0


def test_llamacpp_and_vllm_names_map_to_the_same_columns():
    text = (
        "# HELP llamacpp:tokens_predicted_total x\n"
        "llamacpp:tokens_predicted_total 120\n"
        "llamacpp:prompt_seconds_total 1.5\n"
    )
    llama = lt._server_row({}, 0.0, {}, 0.0, [])  # nothing read: no counters invented
    assert set(llama) == {"server_rss_peak_bytes"}
    after = lt.by_name(text)
    row = lt._server_row({"llamacpp:tokens_predicted_total": 20.0}, 0.0, after, 2.0, [5])
    assert row["server_output_tokens"] == 100 and row["server_output_throughput"] == 50
    vllm_text = (
        'vllm:generation_tokens_total{model_name="m",engine="0"} 30\n'
        'vllm:generation_tokens_total{model_name="m",engine="1"} 10\n'
        'vllm:time_to_first_token_seconds_sum{model_name="m",engine="0"} 2.0\n'
        'vllm:time_to_first_token_seconds_count{model_name="m",engine="0"} 4\n'
        'vllm:request_queue_time_seconds_sum{model_name="m",engine="0"} 0.5 1700000000\n'
    )
    v = lt._server_row({"vllm:generation_tokens_total": 0.0}, 0.0, lt.by_name(vllm_text), 1.0, [])
    assert v["server_output_tokens"] == 40  # summed over engines
    assert "server_ttft_mean_s" not in v  # no "before" for it: not a delta
    both = lt.by_name(vllm_text)
    zero = {k: 0.0 for k in both}
    v = lt._server_row(zero, 0.0, both, 1.0, [])
    assert v["server_ttft_mean_s"] == 0.5 and v["server_queue_s"] == 0.5
    assert json.dumps(v)  # plain numbers
