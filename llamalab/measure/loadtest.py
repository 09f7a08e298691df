"""Load-test a served model with the definitions of vLLM's serving benchmark.

Per request (vLLM `benchmark_serving`): TTFT = send → first streamed token; E2E latency = send →
last chunk; TPOT = (E2E − TTFT) / (output tokens − 1) (the first token excluded; guidellm includes
it); ITL = every gap between streamed chunks (pooled over the level's requests). Per level: request
throughput = completed requests / duration; output-token throughput = output tokens of completed
requests / duration; error rate = failed / sent; goodput = completed requests meeting every SLO
set / duration. Duration = first send → last completion. Percentiles p50/p90/p99 over completed
requests.

Fixed concurrency (closed loop: `c` clients each sending its next request when the last one ends)
or a Poisson arrival rate (exponential gaps, `seed`), bounded by `requests` and `max_duration_s`
per level and by `timeout` per request; a failure is a row with its `error`, never an exception
here. Every request is one `LoadedModel.generate()` call — the same path, timing and token counts
as a notebook's — so a load test measures nothing the rest of the kit would measure differently.
Prompts are sent in turn: a server with a prompt cache (llama.cpp, vLLM's prefix caching) skips the
prefill of a prompt it has seen, so repeating few prompts measures cached TTFTs — pass distinct
prompts for cold ones (benchmarks/loadtest_crosscheck.py found a 4-5x lower TTFT with one repeated
prompt).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING

from ..core import validate
from ..core.errors import InvalidSetting, LlamalabError
from ..core.memory import Monitor
from ..core.settings import setting, with_changes
from ..core.tasks import AnyOf, Deadline
from ..engines.base import Concurrent, require
from ..runtime.loaded import LoadedModel
from ..runtime.remote import ServedProcess

if TYPE_CHECKING:
    import pandas as pd

DEFINITIONS = __doc__
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class SLO:
    """Service-level objectives for goodput (vLLM's `--goodput`): a request is good if it
    meets every one set."""

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None

    def met(self, r: dict) -> bool:
        return all(
            limit is None or (r[key] == r[key] and r[key] <= limit)
            for key, limit in (
                ("ttft_s", self.ttft_s),
                ("tpot_s", self.tpot_s),
                ("e2e_s", self.e2e_s),
            )
        )


@dataclass(frozen=True)
class LoadTestSettings:
    """What `load_test` sends; the DeploymentBuilder widget starts from these."""

    concurrency: tuple[int, ...] = setting(
        (1, 2, 4, 8),
        "Closed-loop levels: that many clients, each sending its "
        "next request when the last one ends.",
    )
    rate: tuple[float, ...] | None = setting(
        None, "Poisson arrival rates (requests/s) instead of concurrency levels."
    )
    requests: int | None = setting(
        None, "Requests per level (None: 4 × the concurrency, or 16 per rate)."
    )
    max_new_tokens: int = setting(64, "New tokens per request.")
    ignore_eos: bool = setting(
        True,
        "Ask for exactly max_new_tokens (llama.cpp and vLLM honour it), so every "
        "request does the same work.",
    )
    timeout: float = setting(
        60.0, "Seconds a request may take before it counts as failed ('timeout')."
    )
    max_duration_s: float = setting(
        120.0, "Seconds a level may run; requests still going are stopped and failed."
    )
    slo: SLO = setting(
        SLO(),
        "Goodput's objectives (TTFT, TPOT, E2E): a request is good if it meets every one set.",
    )
    seed: int = setting(0, "Seed of the Poisson arrivals.")
    max_concurrency: int = setting(64, "Requests in flight at most under a Poisson rate.")

    def __post_init__(self):
        levels = (
            self.concurrency if isinstance(self.concurrency, (list, tuple)) else (self.concurrency,)
        )
        object.__setattr__(
            self, "concurrency", tuple(validate.integer("concurrency", c, 1, 1024) for c in levels)
        )
        if not self.concurrency and self.rate is None:
            raise InvalidSetting("concurrency is empty.", "Pass levels such as (1, 2, 4, 8).")
        if self.rate is not None:
            rates = self.rate if isinstance(self.rate, (list, tuple)) else (self.rate,)
            object.__setattr__(
                self, "rate", tuple(validate.number("rate", r, lo=1e-3) for r in rates)
            )
        if self.requests is not None:
            validate.integer("requests", self.requests, lo=1)
        validate.integer("max_new_tokens", self.max_new_tokens, lo=1)
        validate.flag("ignore_eos", self.ignore_eos)
        validate.number("timeout", self.timeout, lo=0.1)
        validate.number("max_duration_s", self.max_duration_s, lo=0.1)
        if not isinstance(self.slo, SLO):
            raise InvalidSetting(
                f"slo={self.slo!r} is not an SLO.", "Pass llamalab.SLO(ttft_s=..., tpot_s=...)."
            )
        validate.integer("max_concurrency", self.max_concurrency, lo=1)

    def levels(self) -> list[tuple[str, float]]:
        if self.rate is not None:
            return [("rate", r) for r in self.rate]
        return [("concurrency", c) for c in self.concurrency]


@dataclass
class LoadTestResult:
    """`records`: one row per request; `summary`: one row per concurrency level or rate; `server`:
    the server's RSS sampled during the run (empty without a server process); `definitions`: what
    each column means."""

    records: pd.DataFrame
    summary: pd.DataFrame
    server: pd.DataFrame
    definitions: str = field(default=DEFINITIONS, repr=False)


def load_test(
    target,
    prompts,
    settings: LoadTestSettings | None = None,
    *,
    on_event: Callable[[dict], None] | None = None,
    stop_event: threading.Event | None = None,
    **overrides,
) -> LoadTestResult:
    """Send streaming requests to `target` level by level: a served model (`llamalab.connect(...)`,
    whose engine takes concurrent requests) or a server this process started (`llamalab.serve()`:
    its RSS and /metrics are read too). `settings` (a LoadTestSettings) and/or its fields as
    keywords say what to send. `on_event` gets {"kind": "request", ...record} as each request ends
    and {"kind": "level", ...row} per level; `stop_event` ends the test after the requests in
    flight."""
    import pandas as pd

    s = with_changes(settings or LoadTestSettings(), **overrides)
    model, server = _target(target)
    prompts = _prompts(prompts)
    stop_event = stop_event or threading.Event()
    records, rows = [], []
    level_now = {"value": None}
    samples: list[tuple[float, object, int]] = []
    monitor = (
        Monitor(
            0.25, lambda x: samples.append((x.t, level_now["value"], x.rss_bytes)), pid=server.pid
        )
        if server is not None
        else None
    )
    try:
        if monitor:
            monitor.start()
        for kind, value in s.levels():
            if stop_event.is_set():
                break
            level_now["value"] = value
            level = _Level(model, prompts, kind, value, s, on_event, stop_event)
            before = _metrics(server)
            level.run()
            records += level.records
            row = summarize_level(level.records, level.duration_s, s.slo, kind, value)
            row.update(
                _server_row(
                    server, before, level.duration_s, [x[2] for x in samples if x[1] == value]
                )
            )
            row["client_cpu_share"] = (
                level.cpu_s / level.duration_s if level.duration_s else float("nan")
            )
            rows.append(row)
            if on_event:
                on_event({"kind": "level", **row})
    finally:
        if monitor:
            monitor.stop()
    return LoadTestResult(
        records=pd.DataFrame(records),
        summary=pd.DataFrame(rows),
        server=pd.DataFrame(samples, columns=["t_s", "level", "rss_bytes"]),
    )


def _target(target) -> tuple[LoadedModel, ServedProcess | None]:
    server = target if isinstance(target, ServedProcess) else None
    model = server.connect() if server is not None else target
    if not isinstance(model, LoadedModel):
        raise InvalidSetting(
            f"target={type(target).__name__} is neither a served model nor a server.",
            "Pass llamalab.connect(url, model) or the server from llamalab.serve().",
        )
    require(
        model.engine,
        Concurrent,
        "take concurrent requests, so it cannot be load-tested",
        "Serve it (llamalab.serve) and load-test the server: a model in this process answers "
        "one request at a time.",
    )
    return model, server


def _prompts(prompts) -> list:
    if isinstance(prompts, str):
        prompts = [prompts]
    if not prompts:
        raise InvalidSetting(
            "prompts is empty.", "Pass a list of prompt strings (or chat message lists)."
        )
    return list(prompts)


class _Level:
    """One concurrency level or arrival rate: sends, times and records every request."""

    def __init__(
        self, model: LoadedModel, prompts, kind, value, s: LoadTestSettings, on_event, stop_event
    ):
        self.model, self.prompts, self.kind, self.value, self.s = model, prompts, kind, value, s
        self.n = s.requests or (4 * int(value) if kind == "concurrency" else 16)
        self.on_event, self.stop_event = on_event, stop_event
        self.records: list[dict] = []
        self.lock = threading.Lock()
        self.t0 = self.deadline = 0.0
        self.duration_s = self.cpu_s = 0.0

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        cpu0 = sum(me.cpu_times()[:2])
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + self.s.max_duration_s
        if self.kind == "concurrency":
            with ThreadPoolExecutor(
                max_workers=int(self.value), thread_name_prefix="llamalab-load"
            ) as pool:
                list(pool.map(self._one, range(self.n)))
        else:
            self._poisson()
        ends = [r["start_s"] + r["e2e_s"] for r in self.records if r["e2e_s"] == r["e2e_s"]]
        self.duration_s = max(ends) if ends else time.perf_counter() - self.t0
        self.cpu_s = sum(me.cpu_times()[:2]) - cpu0

    def _poisson(self) -> None:
        import numpy as np

        gaps = np.random.default_rng(self.s.seed).exponential(1.0 / self.value, self.n)
        arrivals = np.cumsum(gaps) - gaps[0]
        with ThreadPoolExecutor(
            max_workers=self.s.max_concurrency, thread_name_prefix="llamalab-load"
        ) as pool:
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
        t_send = time.perf_counter()
        until = AnyOf(Deadline(min(t_send + self.s.timeout, self.deadline)), self.stop_event)
        n = self.s.max_new_tokens
        g, error = None, ""
        try:
            g = self.model.generate(
                self.prompts[i % len(self.prompts)],
                max_new_tokens=n,
                min_new_tokens=n if self.s.ignore_eos else 0,
                stop_event=until,
            )
            if g.finish_reason == "stopped":
                error = (
                    "timeout"
                    if time.perf_counter() > t_send + self.s.timeout
                    else "stopped (level time limit)"
                )
        except LlamalabError as e:
            error = f"{type(e).__name__}: {e.message}"
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
        record = _record(
            self.kind, self.value, i, t_send - self.t0, time.perf_counter() - t_send, g, error
        )
        with self.lock:
            self.records.append(record)
        if self.on_event:
            self.on_event({"kind": "request", **record})


def _record(kind, value, i, start_s, elapsed_s, g, error) -> dict:
    """One request's row; a failed request keeps what it measured before it failed."""
    times = list(g.token_times) if g is not None else []
    n = g.new_tokens if g is not None else 0
    ttft = g.ttft_s if g is not None and times else float("nan")
    e2e = g.total_s if g is not None else elapsed_s
    return {
        "concurrency" if kind == "concurrency" else "rate": value,
        "schedule": kind,
        "request": i,
        "start_s": start_s,
        "ttft_s": ttft,
        "e2e_s": e2e,
        "tpot_s": (e2e - ttft) / (n - 1) if n > 1 and times else float("nan"),
        "itl_s": [b - a for a, b in pairwise(times)],
        "output_tokens": n,
        "prompt_tokens": g.prompt_tokens if g is not None else None,
        "ok": not error,
        "error": error,
    }


def summarize_level(records: list[dict], duration_s: float, slo: SLO, kind: str, value) -> dict:
    """One summary row from one level's records (vLLM's definitions; see the module docstring)."""
    import numpy as np

    ok = [r for r in records if r["ok"]]
    sent = len(records)
    any_slo = any(v is not None for v in (slo.ttft_s, slo.tpot_s, slo.e2e_s))
    row = {
        "concurrency": value if kind == "concurrency" else float("nan"),
        "rate": value if kind == "rate" else float("nan"),
        "requests": sent,
        "completed": len(ok),
        "errors": sent - len(ok),
        "error_rate": (sent - len(ok)) / sent if sent else float("nan"),
        "duration_s": duration_s,
        "request_throughput": len(ok) / duration_s if duration_s else float("nan"),
        "output_throughput": sum(r["output_tokens"] for r in ok) / duration_s
        if duration_s
        else float("nan"),
        "goodput": sum(slo.met(r) for r in ok) / duration_s
        if duration_s and any_slo
        else float("nan"),
    }
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
    except Exception:
        return {}


def _server_row(server, before: dict, duration_s: float, rss: list[int]) -> dict:
    """Server-side columns: peak RSS during the level, and llama.cpp's own counters
    over it (/metrics)."""
    if server is None:
        return {}
    after = _metrics(server)
    row = {"server_rss_peak_bytes": max(rss) if rss else None}
    for name, key in (
        ("llamacpp:tokens_predicted_total", "server_output_tokens"),
        ("llamacpp:prompt_tokens_total", "server_prompt_tokens"),
        ("llamacpp:prompt_seconds_total", "server_prompt_s"),
        ("llamacpp:tokens_predicted_seconds_total", "server_decode_s"),
    ):
        if name in after and name in before:
            row[key] = after[name] - before[name]
    if "server_output_tokens" in row and duration_s:
        row["server_output_throughput"] = row["server_output_tokens"] / duration_s
    return row


def agreement(target, reference, prompts, max_new_tokens: int = 32) -> pd.DataFrame:
    """Quality on sample outputs: the served model's greedy answers vs `reference` (an in-process
    LoadedModel) on the same prompts. A DataFrame, one row per prompt; `agreement_pct` in `.attrs`:
    the share of prompts whose answers are identical."""
    import pandas as pd

    served, _ = _target(target)
    rows = []
    for prompt in _prompts(prompts):
        a = served.generate(prompt, max_new_tokens=max_new_tokens).text
        b = reference.generate(prompt, max_new_tokens=max_new_tokens).text
        rows.append(
            {
                "prompt": prompt,
                "served": a,
                "in_process": b,
                "identical": a == b,
                "common_prefix_chars": _common_prefix(a, b),
            }
        )
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
