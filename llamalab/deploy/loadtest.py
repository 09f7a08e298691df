"""Load-test an OpenAI-compatible endpoint with the definitions of vLLM's serving benchmark.

Per request (vLLM `benchmark_serving`): TTFT = send → first streamed token; E2E latency = send → last
chunk; TPOT = (E2E − TTFT) / (output tokens − 1) (the first token excluded; guidellm includes it);
ITL = every gap between streamed chunks (pooled over the level's requests). Per level: request
throughput = completed requests / duration; output-token throughput = output tokens of completed
requests / duration; error rate = failed / sent; goodput = completed requests meeting every SLO set
/ duration. Duration = first send → last completion. Percentiles p50/p90/p99 over completed requests.

Fixed concurrency (closed loop: `c` clients each sending its next request when the last one ends) or
a Poisson arrival rate (exponential gaps, `seed`), bounded by `requests` and `max_duration_s` per
level and by `timeout` per request; a failure is a row with its `error`, never an exception here.
Prompts are sent in turn: a server with a prompt cache (llama.cpp, vLLM's prefix caching) skips the
prefill of a prompt it has seen, so repeating few prompts measures cached TTFTs — pass distinct prompts
for cold ones (benchmarks/loadtest_crosscheck.py found a 4-5x lower TTFT with one repeated prompt).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .. import validate
from ..errors import InvalidSetting, LlamalabError
from ..runtime.endpoint import Endpoint, EndpointEngine
from ..runtime.engine import Sampling, to_messages

DEFINITIONS = __doc__
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class SLO:
    """Service-level objectives for goodput (vLLM's `--goodput`): a request is good if it meets every one set."""
    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None

    def met(self, r: dict) -> bool:
        return all(limit is None or (r[key] == r[key] and r[key] <= limit)
                   for key, limit in (("ttft_s", self.ttft_s), ("tpot_s", self.tpot_s), ("e2e_s", self.e2e_s)))


@dataclass
class LoadTestResult:
    """`records`: one row per request; `summary`: one row per concurrency level or rate; `server`: the
    server's RSS sampled during the run (empty without a Server); `definitions`: what each column means."""
    records: object         # pandas DataFrame
    summary: object
    server: object
    definitions: str = field(default=DEFINITIONS, repr=False)


def load_test(endpoint, prompts, concurrency=(1, 2, 4, 8), requests: int | None = None, rate=None,
              max_tokens: int = 64, timeout: float = 60.0, slo: SLO | None = None, max_duration_s: float = 120.0,
              ignore_eos: bool = True, seed: int = 0, max_concurrency: int = 64,
              on_event: Callable[[dict], None] | None = None, stop_event: threading.Event | None = None,
              server=None) -> LoadTestResult:
    """Send `requests` streaming chat requests per level to `endpoint` (an Endpoint, or a Server from
    `llamalab.serve()`: then its RSS and /metrics are read too). `rate` (requests/s, one or a list)
    switches to Poisson arrivals; else each `concurrency` level runs closed-loop. `on_event` gets
    {"kind": "request", ...record} as each request ends and {"kind": "level", ...summary row} per level.
    `ignore_eos` asks the server for exactly `max_tokens` tokens (llama.cpp and vLLM honour it)."""
    import pandas as pd
    server, ep = _split(endpoint, server)
    prompts = _prompts(prompts)
    levels = _levels(concurrency, rate)
    max_tokens = validate.integer("max_tokens", max_tokens, lo=1)
    timeout = validate.number("timeout", timeout, lo=0.1)
    slo = slo or SLO()
    stop_event = stop_event or threading.Event()
    engine = _engine(ep.engine, timeout, ignore_eos)
    records, rows = [], []
    sampler = _RssSampler(server) if server is not None else None
    try:
        if sampler:
            sampler.start()
        for kind, value in levels:
            if stop_event.is_set():
                break
            n = requests or (4 * value if kind == "concurrency" else 16)
            n = validate.integer("requests", n, lo=1)
            if sampler:
                sampler.level = value
            level = _Level(engine, prompts, kind, value, n, max_tokens, timeout, max_duration_s, seed,
                           max_concurrency, on_event, stop_event)
            before = _metrics(server)
            level.run()
            records += level.records
            row = summarize(level.records, level.duration_s, slo, kind, value)
            row.update(_server_row(server, before, level.duration_s, sampler, value))
            row["client_cpu_share"] = level.cpu_s / level.duration_s if level.duration_s else float("nan")
            rows.append(row)
            if on_event:
                on_event({"kind": "level", **row})
    finally:
        if sampler:
            sampler.stop()
    return LoadTestResult(records=pd.DataFrame(records), summary=pd.DataFrame(rows),
                          server=pd.DataFrame(sampler.samples if sampler else [], columns=["t_s", "level", "rss_bytes"]))


def _split(endpoint, server):
    if hasattr(endpoint, "endpoint") and hasattr(endpoint, "pid"):     # a Server
        return endpoint, endpoint.endpoint
    if not isinstance(endpoint, Endpoint):
        raise InvalidSetting(f"endpoint={type(endpoint).__name__} is not an Endpoint.",
                             "Pass llamalab.Endpoint(url, model) or the server from llamalab.serve().")
    return server, endpoint


def _prompts(prompts) -> list:
    if isinstance(prompts, str):
        prompts = [prompts]
    if not prompts:
        raise InvalidSetting("prompts is empty.", "Pass a list of prompt strings (or chat message lists).")
    return list(prompts)


def _levels(concurrency, rate) -> list[tuple[str, float]]:
    if rate is not None:
        rates = rate if isinstance(rate, (list, tuple)) else [rate]
        return [("rate", validate.number("rate", r, lo=1e-3)) for r in rates]
    values = concurrency if isinstance(concurrency, (list, tuple)) else [concurrency]
    if not values:
        raise InvalidSetting("concurrency is empty.", "Pass levels such as [1, 2, 4, 8].")
    return [("concurrency", validate.integer("concurrency", c, lo=1, hi=1024)) for c in values]


def _engine(engine: EndpointEngine, timeout: float, ignore_eos: bool) -> EndpointEngine:
    """A copy of the endpoint's engine with this test's timeout and extra request fields."""
    e = EndpointEngine.__new__(EndpointEngine)
    e.__dict__.update(engine.__dict__)
    e.timeout = timeout
    e.extra_body = {**getattr(engine, "extra_body", {}), **({"ignore_eos": True} if ignore_eos else {})}
    return e


class _Level:
    """One concurrency level or arrival rate: sends, times and records every request."""

    def __init__(self, engine, prompts, kind, value, n, max_tokens, timeout, max_duration_s, seed,
                 max_concurrency, on_event, stop_event):
        self.engine, self.prompts, self.kind, self.value, self.n = engine, prompts, kind, value, n
        self.sampling = Sampling(max_new_tokens=max_tokens, temperature=0.0)
        self.timeout, self.max_duration_s, self.seed = timeout, max_duration_s, seed
        self.max_concurrency, self.on_event, self.stop_event = max_concurrency, on_event, stop_event
        self.records: list[dict] = []
        self.lock = threading.Lock()
        self.deadline = 0.0
        self.duration_s = self.cpu_s = 0.0

    def run(self) -> None:
        import psutil
        me = psutil.Process()
        cpu0 = sum(me.cpu_times()[:2])
        t0 = time.perf_counter()
        self.t0, self.deadline = t0, t0 + self.max_duration_s
        if self.kind == "concurrency":
            with ThreadPoolExecutor(max_workers=int(self.value), thread_name_prefix="llamalab-load") as pool:
                list(pool.map(self._one, range(self.n)))
        else:
            self._poisson()
        ends = [r["start_s"] + r["e2e_s"] for r in self.records if r["e2e_s"] == r["e2e_s"]]
        self.duration_s = (max(ends) if ends else time.perf_counter() - t0)
        self.cpu_s = sum(me.cpu_times()[:2]) - cpu0

    def _poisson(self) -> None:
        import numpy as np
        gaps = np.random.default_rng(self.seed).exponential(1.0 / self.value, self.n)
        arrivals = np.cumsum(gaps) - gaps[0]
        with ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="llamalab-load") as pool:
            for i, at in enumerate(arrivals):
                wait = self.t0 + at - time.perf_counter()
                if wait > 0 and self.stop_event.wait(wait):
                    break
                if time.perf_counter() > self.deadline:
                    break
                pool.submit(self._one, i)

    def _one(self, i: int) -> None:
        if self.stop_event.is_set() or time.perf_counter() > self.deadline:
            return
        prompt = self.prompts[i % len(self.prompts)]
        times: list[float] = []
        t_send = time.perf_counter()
        end_by = min(t_send + self.timeout, self.deadline)
        error, usage = "", None
        try:
            usage = self.engine.generate(to_messages(prompt, None), self.sampling, lambda _: times.append(time.perf_counter()),
                                         lambda: self.stop_event.is_set() or time.perf_counter() > end_by)
            if time.perf_counter() > end_by and (usage is None or (usage.new_tokens or 0) < self.sampling.max_new_tokens):
                error = "timeout" if time.perf_counter() > t_send + self.timeout else "stopped (level time limit)"
        except LlamalabError as e:
            error = f"{type(e).__name__}: {e.message}"
        except Exception as e:  # noqa: BLE001 - any failure is a row, never a crash of the test
            error = f"{type(e).__name__}: {e}"
        t_end = time.perf_counter()
        record = _record(self.kind, self.value, i, t_send - self.t0, t_send, t_end, times, usage, error)
        with self.lock:
            self.records.append(record)
        if self.on_event:
            self.on_event({"kind": "request", **record})


def _record(kind, value, i, start_s, t_send, t_end, times, usage, error) -> dict:
    n = (usage.new_tokens if usage and usage.new_tokens is not None else len(times)) if not error else len(times)
    ttft = times[0] - t_send if times else float("nan")
    e2e = t_end - t_send
    itl = [b - a for a, b in zip(times, times[1:])]
    return {"concurrency" if kind == "concurrency" else "rate": value, "schedule": kind, "request": i,
            "start_s": start_s, "ttft_s": ttft, "e2e_s": e2e,
            "tpot_s": (e2e - ttft) / (n - 1) if n > 1 and times else float("nan"),
            "itl_s": itl, "output_tokens": n, "prompt_tokens": usage.prompt_tokens if usage else None,
            "ok": not error, "error": error}


def summarize(records: list[dict], duration_s: float, slo: SLO, kind: str, value) -> dict:
    """One summary row from one level's records (vLLM's definitions; see the module docstring)."""
    import numpy as np
    ok = [r for r in records if r["ok"]]
    sent = len(records)
    row = {"concurrency": value if kind == "concurrency" else float("nan"),
           "rate": value if kind == "rate" else float("nan"), "requests": sent, "completed": len(ok),
           "errors": sent - len(ok), "error_rate": (sent - len(ok)) / sent if sent else float("nan"),
           "duration_s": duration_s,
           "request_throughput": len(ok) / duration_s if duration_s else float("nan"),
           "output_throughput": sum(r["output_tokens"] for r in ok) / duration_s if duration_s else float("nan"),
           "goodput": (sum(slo.met(r) for r in ok) / duration_s
                       if duration_s and any(v is not None for v in (slo.ttft_s, slo.tpot_s, slo.e2e_s)) else float("nan"))}
    for key in ("ttft_s", "tpot_s", "e2e_s", "itl_s"):
        values = [x for r in ok for x in (r[key] if key == "itl_s" else [r[key]]) if x == x]
        for p in PERCENTILES:
            row[f"{key[:-2]}_p{p}_s"] = float(np.percentile(values, p)) if values else float("nan")
        row[f"{key[:-2]}_mean_s"] = float(np.mean(values)) if values else float("nan")
    return row


def _metrics(server) -> dict:
    if server is None:
        return {}
    try:
        return server.metrics()
    except Exception:   # noqa: BLE001 - /metrics is optional (other servers, or it ended)
        return {}


def _server_row(server, before: dict, duration_s: float, sampler, value) -> dict:
    """Server-side columns: peak RSS during the level, and llama.cpp's own counters over it (/metrics)."""
    if server is None:
        return {}
    after = _metrics(server)
    rss = [s[2] for s in sampler.samples if s[1] == value] if sampler else []
    row = {"server_rss_peak_bytes": max(rss) if rss else None}
    for name, key in (("llamacpp:tokens_predicted_total", "server_output_tokens"),
                      ("llamacpp:prompt_tokens_total", "server_prompt_tokens"),
                      ("llamacpp:prompt_seconds_total", "server_prompt_s"),
                      ("llamacpp:tokens_predicted_seconds_total", "server_decode_s")):
        if name in after and name in before:
            row[key] = after[name] - before[name]
    if "server_output_tokens" in row and duration_s:
        row["server_output_throughput"] = row["server_output_tokens"] / duration_s
    return row


class _RssSampler:
    """The server process's RSS every 0.25 s, tagged with the level running."""

    def __init__(self, server, interval: float = 0.25):
        self.server, self.interval, self.level = server, interval, None
        self.samples: list[tuple[float, object, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llamalab-rss", daemon=True)

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            rss = self.server.rss_bytes()
            if rss is not None:
                self.samples.append((time.perf_counter() - self.t0, self.level, rss))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def agreement(endpoint, reference, prompts, max_tokens: int = 32):
    """Quality on sample outputs: the served model's greedy answers vs `reference` (an in-process
    LoadedModel) on the same prompts. A DataFrame, one row per prompt; `agreement_pct` in `.attrs`:
    the share of prompts whose answers are identical."""
    import pandas as pd
    _, ep = _split(endpoint, None)
    rows = []
    for prompt in _prompts(prompts):
        served = ep.generate(prompt, max_new_tokens=max_tokens).text
        local = reference.generate(prompt, max_new_tokens=max_tokens).text
        same = _common_prefix(served, local)
        rows.append({"prompt": prompt, "served": served, "in_process": local, "identical": served == local,
                     "common_prefix_chars": same})
    df = pd.DataFrame(rows)
    df.attrs["agreement_pct"] = 100.0 * df["identical"].mean()
    return df


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


__all__ = ["DEFINITIONS", "SLO", "LoadTestResult", "agreement", "load_test", "summarize"]
