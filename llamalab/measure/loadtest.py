"""Load-test a served model with the definitions of vLLM's serving benchmark.

Per request (vLLM `benchmark_serving`): TTFT = send → first streamed token; E2E latency = send →
last chunk; TPOT = (E2E − TTFT) / (output tokens − 1) (the first token excluded; guidellm includes
it); ITL = every gap between streamed chunks (pooled over the level's requests). Under an arrival
rate, "send" is the request's *scheduled* send time: a request the client could not send on time
(every worker busy) counts its wait too (no coordinated omission); `send_delay_s` is that wait and
`sent_late` marks one over `late_after_s`.

Per level: request throughput = completed requests / duration; output-token throughput = output
tokens of completed requests / duration; error rate = failed / sent (requests = sent + not sent:
a rate's requests the client never sent are `not_sent`, not errors); goodput = completed
requests meeting every SLO set / duration. Duration = the first measured request's (scheduled)
send → the last measured completion. Percentiles p50/p90/p99 over completed requests (send delay:
over sent ones). Requests sent (rate: scheduled) during the warm-up are recorded with
`warmup=True` and left out of the summary.

Levels: fixed concurrency (closed loop: `c` clients each sending its next request when the last one
ends) or a Poisson arrival rate (open loop: every send time is drawn before the level starts,
with `seed`, and kept whatever the server does). A level lasts `warmup_s` + `duration_s` (a steady
state), or sends a fixed number of `requests`; `max_duration_s` bounds it and `timeout` each
request. Every request gets one record — completed, failed (its `error`), timed out, stopped,
or (rate) not sent before the level's time limit — never an exception here. Every request is one
`LoadedModel.generate()` call: the same path, timing and token counts as a notebook's.

Prompts: a server with a prompt cache (llama.cpp, vLLM's prefix caching) skips the prefill of a
prefix it has seen, so repeated prompts measure cached TTFTs (benchmarks/loadtest_crosscheck.py
found a 4-5x lower TTFT with one repeated prompt). By default each request's prompt starts with a
tag naming its level and number (`distinct_prompts`), so no two share more than the chat template;
`prompts=None` sends synthetic prompts whose word counts are drawn from `prompt_words`.
"""

from __future__ import annotations

import random
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
NAN = float("nan")
DEFAULT_WARMUP_S = 5.0

# A record's `status`.
OK, FAILED, TIMEOUT, STOPPED, NOT_SENT = "ok", "failed", "timeout", "stopped", "not sent"

# The server's own counters, read before and after each level: the kit's column, then llama.cpp's
# name (`/metrics`, serving-facts 4.4) and vLLM's (serving-facts 2.1; counters get `_total`,
# histograms `_sum`/`_count`). Series with labels are summed over their labels.
SERVER_COUNTERS = {
    "server_output_tokens": ("llamacpp:tokens_predicted_total", "vllm:generation_tokens_total"),
    "server_prompt_tokens": ("llamacpp:prompt_tokens_total", "vllm:prompt_tokens_total"),
    "server_cached_prompt_tokens": ("llamacpp:prompt_tokens_cached_total", None),
    "server_prompt_s": ("llamacpp:prompt_seconds_total", "vllm:request_prefill_time_seconds_sum"),
    "server_decode_s": (
        "llamacpp:tokens_predicted_seconds_total",
        "vllm:request_decode_time_seconds_sum",
    ),
    "server_queue_s": (None, "vllm:request_queue_time_seconds_sum"),
    "server_ttft_sum_s": (None, "vllm:time_to_first_token_seconds_sum"),
    "server_ttft_count": (None, "vllm:time_to_first_token_seconds_count"),
    "server_preemptions": (None, "vllm:num_preemptions_total"),
}

WORDS = (  # noqa: SIM905 (one readable string)
    "time year people way day thing life child world school state family group country problem "
    "hand part place case week company system program question work number night point home "
    "water room area money story fact month book word business issue side kind head house "
    "service friend power hour game line member city community name team idea body information"
).split()


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
    think_s: float = setting(
        0.0,
        "Closed loop as simulated users: each client waits an exponential time of this mean "
        "(seconds, drawn with seed) before its first request and after every answer, as a learner "
        "reads and types; concurrency is then the number of users. 0: sends again at once.",
    )
    rate: tuple[float, ...] | None = setting(
        None,
        "Poisson arrival rates (requests/s) instead of concurrency levels: every send time is "
        "drawn in advance and latency counts from it.",
    )
    duration_s: float = setting(
        20.0,
        "Seconds each level sends requests after its warm-up (a steady state); used when "
        "requests is None.",
    )
    warmup_s: float | None = setting(
        None,
        "Seconds each level runs before it is measured: requests sent (rate: scheduled) in it are "
        f"recorded with warmup=True and left out of the summary. None: {DEFAULT_WARMUP_S:g} s "
        "for duration-based levels, 0 with requests=.",
    )
    requests: int | None = setting(
        None,
        "Measured requests per level (a fixed count, as vLLM's and guidellm's benchmarks send) "
        "instead of duration_s. None: levels last warmup_s + duration_s.",
    )
    max_new_tokens: int = setting(64, "New tokens per request.")
    ignore_eos: bool = setting(
        True,
        "Ask for exactly max_new_tokens (llama.cpp and vLLM honour it), so every "
        "request does the same work.",
    )
    distinct_prompts: bool = setting(
        True,
        "Start each request's prompt with a tag naming its level and number, so no two requests "
        "share a prefix a server's prompt cache could reuse. False: send prompts as given "
        "(repeats then measure cached prefills).",
    )
    prompt_words: tuple[int, int] = setting(
        (16, 64),
        "With prompts=None: each synthetic prompt's word count is drawn uniformly from this "
        "range (lowest, highest).",
    )
    timeout: float = setting(
        60.0, "Seconds a request may take before it counts as failed ('timeout')."
    )
    max_duration_s: float = setting(
        120.0,
        "Seconds a level may run in all; requests still going are stopped, and (rate) those not "
        "yet sent are recorded as not sent.",
    )
    slo: SLO = setting(
        SLO(),
        "Goodput's objectives (TTFT, TPOT, E2E): a request is good if it meets every one set.",
    )
    seed: int = setting(0, "Seed of the Poisson arrivals and the synthetic prompts.")
    max_concurrency: int = setting(
        64,
        "Requests in flight at most under a Poisson rate; a request due while all are busy waits "
        "in the client, and its wait counts in its latency.",
    )
    late_after_s: float = setting(
        0.05,
        "Under a rate: a request sent more than this many seconds after its scheduled time is "
        "marked sent_late (the client could not keep up; raise max_concurrency).",
    )
    metrics_url: str | None = setting(
        None,
        "A server's Prometheus /metrics URL to read before and after each level (vLLM: "
        "http://host:8000/metrics). A server from llamalab.serve() is read without it.",
    )

    def __post_init__(self):
        self._check_levels()
        self._check_lengths()
        validate.integer("max_new_tokens", self.max_new_tokens, lo=1)
        validate.number("think_s", self.think_s, lo=0.0)
        validate.flag("ignore_eos", self.ignore_eos)
        validate.flag("distinct_prompts", self.distinct_prompts)
        validate.number("timeout", self.timeout, lo=0.1)
        if not isinstance(self.slo, SLO):
            raise InvalidSetting(
                f"slo={self.slo!r} is not an SLO.", "Pass llamalab.SLO(ttft_s=..., tpot_s=...)."
            )
        validate.integer("max_concurrency", self.max_concurrency, lo=1)
        validate.number("late_after_s", self.late_after_s, lo=0.0)
        if self.metrics_url is not None:
            validate.text("metrics_url", self.metrics_url)

    def _check_levels(self) -> None:
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

    def _check_lengths(self) -> None:
        if self.requests is not None:
            validate.integer("requests", self.requests, lo=1)
        validate.number("duration_s", self.duration_s, lo=0.1)
        if self.warmup_s is not None:
            validate.number("warmup_s", self.warmup_s, lo=0.0)
        validate.number("max_duration_s", self.max_duration_s, lo=0.1)
        if not isinstance(self.prompt_words, (list, tuple)) or len(self.prompt_words) != 2:
            raise InvalidSetting(
                f"prompt_words={self.prompt_words!r} is not a (lowest, highest) pair.",
                "Pass two word counts, e.g. prompt_words=(16, 64).",
            )
        lo, hi = self.prompt_words
        validate.integer("prompt_words[0]", lo, lo=1)
        validate.integer("prompt_words[1]", hi, lo=lo)
        object.__setattr__(self, "prompt_words", (lo, hi))
        if self.requests is None and self.warmup + self.duration_s > self.max_duration_s:
            raise InvalidSetting(
                f"warmup_s + duration_s = {self.warmup + self.duration_s:g} s is longer than "
                f"max_duration_s = {self.max_duration_s:g} s.",
                "Raise max_duration_s (it bounds each level) or shorten duration_s / warmup_s.",
            )

    @property
    def warmup(self) -> float:
        """The warm-up in seconds, its default resolved."""
        if self.warmup_s is not None:
            return float(self.warmup_s)
        return 0.0 if self.requests is not None else DEFAULT_WARMUP_S

    def levels(self) -> list[tuple[str, float]]:
        if self.rate is not None:
            return [("rate", r) for r in self.rate]
        return [("concurrency", c) for c in self.concurrency]


@dataclass
class LoadTestResult:
    """`records`: one row per request (warm-up ones included, `warmup=True`); `summary`: one row
    per concurrency level or rate, over the measured requests; `server`: the server's RSS sampled
    during the run (empty without a server process); `definitions`: what each column means."""

    records: pd.DataFrame
    summary: pd.DataFrame
    server: pd.DataFrame
    definitions: str = field(default=DEFINITIONS, repr=False)


def load_test(
    target,
    prompts=None,
    settings: LoadTestSettings | None = None,
    *,
    on_event: Callable[[dict], None] | None = None,
    stop_event: threading.Event | None = None,
    **overrides,
) -> LoadTestResult:
    """Send streaming requests to `target` level by level: a served model (`llamalab.connect(...)`,
    whose engine takes concurrent requests) or a server this process started (`llamalab.serve()`:
    its RSS and /metrics are read too). `prompts`: strings or chat message lists, sent in turn
    (None: synthetic prompts). `settings` (a LoadTestSettings) and/or its fields as keywords say
    what to send. `on_event` gets {"kind": "request", ...record} as each request ends and
    {"kind": "level", ...row} per level; `stop_event` ends the test after the requests in flight."""
    import pandas as pd

    s = with_changes(settings or LoadTestSettings(), **overrides)
    model, server = _target(target)
    source = PromptSource(prompts, s)
    scrape = _Scraper(server, s.metrics_url)
    stop_event = stop_event or threading.Event()
    records, rows = [], []
    rss = _RssSampler(server)
    with rss:
        for index, (kind, value) in enumerate(s.levels()):
            if stop_event.is_set():
                break
            rss.level = value
            level = _Level(model, source, index, kind, value, s, on_event, stop_event, scrape)
            level.run()
            records += level.records
            row = _level_row(level, s, scrape, rss.of(value))
            rows.append(row)
            if on_event:
                on_event({"kind": "level", **row})
    return LoadTestResult(
        records=pd.DataFrame(records),
        summary=pd.DataFrame(rows),
        server=pd.DataFrame(rss.samples, columns=["t_s", "level", "rss_bytes"]),
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
            "prompts is empty.",
            "Pass a list of prompt strings (or chat message lists), or None for synthetic ones.",
        )
    return list(prompts)


# ---- prompts ------------------------------------------------------------------------------------
class PromptSource:
    """The prompt of request `i` of level `index`: the given prompts in turn (tagged so that no two
    share a prefix, unless `distinct_prompts` is off), or a synthetic text of a drawn length."""

    def __init__(self, prompts, s: LoadTestSettings):
        self.prompts = None if prompts is None else _prompts(prompts)
        self.distinct, self.words, self.seed = s.distinct_prompts, s.prompt_words, s.seed

    def __call__(self, index: int, kind: str, value, i: int):
        if self.prompts is None:
            return f"[{kind} {value:g} #{i}] " + synthetic_prompt(self.words, self.seed, index, i)
        prompt = self.prompts[i % len(self.prompts)]
        return _tagged(prompt, f"[{kind} {value:g} #{i}] ") if self.distinct else prompt


def synthetic_prompt(words: tuple[int, int], seed: int, level: int, i: int) -> str:
    """A text of a word count drawn uniformly from `words`, the same for the same arguments."""
    rng = random.Random(f"{seed}-{level}-{i}")
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(*words)))


def _tagged(prompt, tag: str):
    """`prompt` with `tag` before its text (a chat message list: before its first message's)."""
    if isinstance(prompt, str):
        return tag + prompt
    messages = [dict(m) for m in prompt]
    if messages and isinstance(messages[0].get("content"), str):
        messages[0]["content"] = tag + messages[0]["content"]
    return messages


# ---- the schedule -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ticket:
    """One request to send: its number, its send time (s after the level's start; under a rate,
    drawn in advance), and whether it falls in the warm-up."""

    i: int
    at_s: float
    warmup: bool


def poisson_schedule(
    rate: float, warmup_s: float, duration_s: float, requests: int | None, rng
) -> list[Ticket]:
    """Send times with exponential gaps (the first at 0): those in the warm-up, then `requests`
    measured ones, or (requests=None) every one before warmup_s + duration_s."""
    out, t = [], 0.0
    measured = 0
    while True:
        warm = t < warmup_s
        if requests is None and t >= warmup_s + duration_s:
            return out
        if requests is not None and not warm and measured >= requests:
            return out
        out.append(Ticket(len(out), t, warm))
        measured += not warm
        t += float(rng.exponential(1.0 / rate))


class _Level:
    """One concurrency level or arrival rate: sends, times and records every request."""

    def __init__(
        self, model, source, index, kind, value, s: LoadTestSettings, on_event, stop, scrape
    ):
        self.model, self.source, self.index = model, source, index
        self.kind, self.value, self.s = kind, value, s
        self.on_event, self.stop_event, self.scrape = on_event, stop, scrape
        self.records: list[dict] = []
        self.lock = threading.Lock()
        self.t0 = self.deadline = 0.0
        self.wall_s = self.cpu_s = 0.0
        self.counters: tuple = ({}, 0.0, {}, 0.0)  # before, when; after, when

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        cpu0 = sum(me.cpu_times()[:2])
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + self.s.max_duration_s
        done = threading.Event()
        before = self._scrape_after_warmup(done)
        if self.kind == "concurrency":
            self._closed_loop()
        else:
            self._open_loop()
        done.set()
        if before is not None:
            before.join()
        self.counters = (*self.counters[:2], self.scrape(), time.perf_counter())
        self.wall_s = time.perf_counter() - self.t0
        self.cpu_s = sum(me.cpu_times()[:2]) - cpu0

    def _scrape_after_warmup(self, done: threading.Event) -> threading.Thread | None:
        """Read the server's counters when the warm-up ends: now (before the first request) without
        one, else on a thread, unless the level is `done` first."""

        def read():
            if not done.wait(self.s.warmup):
                self.counters = (self.scrape(), time.perf_counter(), {}, 0.0)

        if not self.s.warmup:
            read()
            return None
        t = threading.Thread(target=read, name="llamalab-load-metrics", daemon=True)
        t.start()
        return t

    # -- closed loop: each client sends its next request when the last one ends
    def _closed_loop(self) -> None:
        issued = {"all": 0, "measured": 0}
        n = int(self.value)
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="llamalab-load") as pool:
            list(pool.map(lambda user: self._client(issued, user), range(n)))

    def _client(self, issued: dict, user: int) -> None:
        think = random.Random(f"{self.s.seed}-{self.index}-{user}")
        while self._think(think) and (ticket := self._next_ticket(issued)) is not None:
            self._send(ticket)

    def _think(self, rng: random.Random) -> bool:
        """A simulated user's pause (exponential, mean think_s; also before the first request,
        so users start spread out as in a steady state); False if the level ends during it."""
        if not self.s.think_s:
            return True
        sending = (
            self.s.warmup + self.s.duration_s if self.s.requests is None else self.s.max_duration_s
        )
        left = min(self.deadline, self.t0 + sending) - time.perf_counter()
        pause = rng.expovariate(1.0 / self.s.think_s)
        return pause < left and not self.stop_event.wait(pause)

    def _next_ticket(self, issued: dict) -> Ticket | None:
        with self.lock:
            now = time.perf_counter() - self.t0
            if self.stop_event.is_set() or now >= self.s.max_duration_s:
                return None
            warm = now < self.s.warmup
            if self.s.requests is None and now >= self.s.warmup + self.s.duration_s:
                return None
            if self.s.requests is not None and not warm and issued["measured"] >= self.s.requests:
                return None
            ticket = Ticket(issued["all"], now, warm)
            issued["all"] += 1
            issued["measured"] += not warm
            return ticket

    # -- open loop: send times drawn in advance; each is kept whatever the server does
    def _open_loop(self) -> None:
        import numpy as np

        rng = np.random.default_rng([self.s.seed, self.index])
        tickets = poisson_schedule(
            self.value, self.s.warmup, self.s.duration_s, self.s.requests, rng
        )
        with ThreadPoolExecutor(
            max_workers=self.s.max_concurrency, thread_name_prefix="llamalab-load"
        ) as pool:
            for ticket in tickets:
                if not self._wait_until(ticket):
                    self._not_sent(ticket)
                else:
                    pool.submit(self._due, ticket)

    def _wait_until(self, ticket: Ticket) -> bool:
        """Wait for the ticket's send time; False if the test stops or the level's time runs out
        first (then it is never sent)."""
        if ticket.at_s >= self.s.max_duration_s or self.stop_event.is_set():
            return False
        wait = self.t0 + ticket.at_s - time.perf_counter()
        return not (wait > 0 and self.stop_event.wait(wait))

    def _due(self, ticket: Ticket) -> None:
        """A worker picked the ticket up, on time or late: send it unless the level is over."""
        if self.stop_event.is_set() or time.perf_counter() > self.deadline:
            self._not_sent(ticket)
        else:
            self._send(ticket)

    # -- one request
    def _send(self, ticket: Ticket) -> None:
        t_send = time.perf_counter()
        until = AnyOf(Deadline(min(t_send + self.s.timeout, self.deadline)), self.stop_event)
        n = self.s.max_new_tokens
        g, status, error = None, OK, ""
        try:
            g = self.model.generate(
                self.source(self.index, self.kind, self.value, ticket.i),
                max_new_tokens=n,
                min_new_tokens=n if self.s.ignore_eos else 0,
                stop_event=until,
            )
            if g.finish_reason == "stopped":
                status, error = self._why_stopped(t_send)
        except LlamalabError as e:
            status, error = FAILED, f"{type(e).__name__}: {e.message}"
        except Exception as e:
            status, error = FAILED, f"{type(e).__name__}: {e}"
        delay = t_send - (self.t0 + ticket.at_s)
        elapsed = time.perf_counter() - t_send
        self._add(self._record(ticket, delay, _measured(g, elapsed, delay), status, error))

    def _why_stopped(self, t_send: float) -> tuple[str, str]:
        if time.perf_counter() > t_send + self.s.timeout:
            return TIMEOUT, f"timeout (no answer within {self.s.timeout:g} s)"
        if self.stop_event.is_set():
            return STOPPED, "stopped (the test was stopped)"
        return STOPPED, f"stopped (level time limit max_duration_s={self.s.max_duration_s:g})"

    def _not_sent(self, ticket: Ticket) -> None:
        why = (
            "not sent (the test was stopped)"
            if self.stop_event.is_set()
            else "not sent before the level's time limit "
            f"(max_duration_s={self.s.max_duration_s:g})"
        )
        self._add(self._record(ticket, NAN, _measured(None, NAN, NAN), NOT_SENT, why))

    def _record(self, ticket: Ticket, delay: float, m: dict, status: str, error: str) -> dict:
        closed = self.kind == "concurrency"
        return {
            "concurrency" if closed else "rate": self.value,
            "schedule": self.kind,
            "request": ticket.i,
            "warmup": ticket.warmup,
            "status": status,
            "scheduled_s": ticket.at_s,
            "start_s": ticket.at_s + delay,
            "send_delay_s": delay,
            "sent_late": bool(delay == delay and delay > self.s.late_after_s),
            **m,
            "ok": status == OK,
            "error": error,
        }

    def _add(self, record: dict) -> None:
        with self.lock:
            self.records.append(record)
        if self.on_event:
            self.on_event({"kind": "request", **record})


def _measured(g, elapsed_s: float, delay_s: float) -> dict:
    """What one generation measured, its latencies counted from the scheduled send (`delay_s`
    before the real one); a failed request keeps what it measured before it failed."""
    times = list(g.token_times) if g is not None else []
    n = g.new_tokens if g is not None else 0
    ttft = delay_s + g.ttft_s if g is not None and times else NAN
    e2e = delay_s + (g.total_s if g is not None else elapsed_s)
    return {
        "ttft_s": ttft,
        "e2e_s": e2e,
        "tpot_s": (e2e - ttft) / (n - 1) if n > 1 and times else NAN,
        "itl_s": [b - a for a, b in pairwise(times)],
        "output_tokens": n,
        "prompt_tokens": g.prompt_tokens if g is not None else None,
    }


# ---- the summary --------------------------------------------------------------------------------
def _level_row(level: _Level, s: LoadTestSettings, scrape, rss: list[int]) -> dict:
    measured = [r for r in level.records if not r["warmup"]]
    row = summarize_level(measured, measured_duration(measured), s.slo, level.kind, level.value)
    row["warmup_requests"] = len(level.records) - len(measured)
    if scrape.active:
        row.update(_server_row(*level.counters, rss))
    row["client_cpu_share"] = level.cpu_s / level.wall_s if level.wall_s else NAN
    return row


def measured_duration(records: list[dict]) -> float:
    """The first (scheduled) send → the last completion among `records` (NaN: none ended)."""
    ends = [r["scheduled_s"] + r["e2e_s"] for r in records if r["e2e_s"] == r["e2e_s"]]
    starts = [r["scheduled_s"] for r in records]
    return max(ends) - min(starts) if ends else NAN


def summarize_level(records: list[dict], duration_s: float, slo: SLO, kind: str, value) -> dict:
    """One summary row from one level's records (vLLM's definitions; see the module docstring)."""
    ok = [r for r in records if r["ok"]]
    scheduled = len(records)
    sent = [r for r in records if r.get("status") != NOT_SENT]
    any_slo = any(v is not None for v in (slo.ttft_s, slo.tpot_s, slo.e2e_s))
    has_duration = bool(duration_s and duration_s == duration_s)
    row = {
        "concurrency": value if kind == "concurrency" else NAN,
        "rate": value if kind == "rate" else NAN,
        "requests": scheduled,
        "sent": len(sent),
        "not_sent": scheduled - len(sent),
        "sent_late": sum(bool(r.get("sent_late")) for r in records),
        "completed": len(ok),
        "errors": len(sent) - len(ok),
        "error_rate": (len(sent) - len(ok)) / len(sent) if sent else NAN,
        "duration_s": duration_s,
        "request_throughput": len(ok) / duration_s if has_duration else NAN,
        "output_throughput": sum(r["output_tokens"] for r in ok) / duration_s
        if has_duration
        else NAN,
        "goodput": sum(slo.met(r) for r in ok) / duration_s if has_duration and any_slo else NAN,
    }
    row.update(_percentiles(ok, ("ttft_s", "tpot_s", "e2e_s", "itl_s")))
    row.update(_percentiles(sent, ("send_delay_s",)))
    return row


def _percentiles(records: list[dict], keys) -> dict:
    import numpy as np

    row = {}
    for key in keys:
        values = [x for r in records for x in (r[key] if key == "itl_s" else [r[key]]) if x == x]
        for p in PERCENTILES:
            row[f"{key[:-2]}_p{p}_s"] = float(np.percentile(values, p)) if values else NAN
        row[f"{key[:-2]}_mean_s"] = float(np.mean(values)) if values else NAN
    return row


# ---- the server's side --------------------------------------------------------------------------
class _RssSampler:
    """The server process's RSS every 0.25 s, tagged with the level running (none: no server)."""

    def __init__(self, server):
        self.samples: list[tuple[float, object, int]] = []
        self.level = None
        self.monitor = (
            Monitor(
                0.25, lambda x: self.samples.append((x.t, self.level, x.rss_bytes)), pid=server.pid
            )
            if server is not None
            else None
        )

    def __enter__(self):
        if self.monitor:
            self.monitor.start()
        return self

    def __exit__(self, *exc):
        if self.monitor:
            self.monitor.stop()

    def of(self, level) -> list[int]:
        return [x[2] for x in self.samples if x[1] == level]


class _Scraper:
    """Reads the server's Prometheus counters: a served process's own `metrics()`, or
    `metrics_url`; {} when neither is given or the read fails (a level never fails for it)."""

    def __init__(self, server, url: str | None):
        self.server, self.url = server, url
        self.active = server is not None or url is not None

    def __call__(self) -> dict[str, float]:
        try:
            if self.url is not None:
                return by_name(_get_metrics(self.url))
            if self.server is not None:
                return by_name(self.server.metrics())
        except Exception:
            pass
        return {}


def _get_metrics(url: str) -> str:
    from ..engines.http import httpx

    r = httpx().get(url, timeout=5)
    r.raise_for_status()
    return r.text


def by_name(metrics) -> dict[str, float]:
    """Prometheus series summed over their labels, by metric name: from the exposition text or
    from a {series: value} dict (`Server.metrics()`)."""
    if isinstance(metrics, str):
        metrics = dict(_series(line) for line in metrics.splitlines() if _is_sample(line))
    out: dict[str, float] = {}
    for series, value in metrics.items():
        name = series.split("{", 1)[0].strip()
        out[name] = out.get(name, 0.0) + value
    return out


def _is_sample(line: str) -> bool:
    return bool(line.strip()) and not line.startswith("#")


def _series(line: str) -> tuple[str, float]:
    """`name{labels} value [timestamp]` → (name{labels}, value); NaN when unreadable."""
    head, _, rest = line.rpartition("}") if "}" in line else ("", "", line)
    parts = rest.split()
    name = head + "}" if head else parts.pop(0)
    try:
        return name, float(parts[0])
    except (IndexError, ValueError):
        return name, NAN


def _server_row(before: dict, t_before: float, after: dict, t_after: float, rss: list[int]) -> dict:
    """Server-side columns: peak RSS during the level, and the server's own counters over the
    measured part of it (llama.cpp's or vLLM's names, whichever it exports)."""
    row: dict = {"server_rss_peak_bytes": max(rss) if rss else None}
    for key, names in SERVER_COUNTERS.items():
        for name in names:
            if name and name in after and name in before:
                row[key] = after[name] - before[name]
                break
    count = row.pop("server_ttft_count", 0)
    ttft_sum = row.pop("server_ttft_sum_s", None)
    if count and ttft_sum is not None:
        row["server_ttft_mean_s"] = ttft_sum / count
    window = t_after - t_before if before and after else 0.0
    if "server_output_tokens" in row and window > 0:
        row["server_output_throughput"] = row["server_output_tokens"] / window
    return row


# ---- quality of the served answers --------------------------------------------------------------
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
