"""Pieces every widget shares: the inline error box, background work, throttled updates, formatting.

Long work runs as a thread Task (llamalab/core/tasks.py) so the kernel stays free to handle clicks
(a Stop button only works that way: clicks are not handled while a cell is busy). The task only
waits: the torch work itself runs on the kit's one torch thread (llamalab/core/torch_thread.py), so
a widget decodes as fast as a cell. A widget's Stop is its task's `stop()`.
"""

from __future__ import annotations

import functools
import html
import logging
import threading
import time
from collections.abc import Callable

import ipywidgets as w

from llamalab import Generation, LiveStats, LlamalabError, Task, metric
from llamalab.core import memory, tasks

log = logging.getLogger("llamalab.widgets")

_BOX = (
    "<div class='llamalab-{kind}' style='border-left:4px solid {colour};background:{bg};"
    "padding:6px 10px;margin:4px 0;white-space:normal'>{body}</div>"
)
_STYLE = {
    "error": ("#d62728", "#fdecea"),
    "warning": ("#ff7f0e", "#fff4e5"),
    "info": ("#1f77b4", "#e8f1fa"),
}


def message_html(message: str, fix: str = "", kind: str = "error") -> str:
    """A coloured box with the message in bold and the fix on the next line."""
    colour, bg = _STYLE[kind]
    body = f"<b>{html.escape(message)}</b>" + (f"<br>→ {html.escape(fix)}" if fix else "")
    return _BOX.format(kind=kind, colour=colour, bg=bg, body=body)


def explain(exc: BaseException) -> tuple[str, str]:
    """(message, fix) for any exception: the library's own words,
    else one line and where to look."""
    if isinstance(exc, LlamalabError):
        return exc.message, exc.fix
    return (
        f"Unexpected {type(exc).__name__}: {exc}".strip(),
        "This is not one of llamalab's known errors; the full traceback is in the kernel log. "
        "The widget still works: change a setting and try again.",
    )


class ErrorBox(w.HTML):
    """Shows the last error inline (message + suggested fix), never a traceback;
    empty when all is well."""

    def __init__(self, **kwargs):
        super().__init__(value="", **kwargs)
        self.error: BaseException | None = None
        self.message = self.fix = ""

    def show(self, exc: BaseException, kind: str = "error") -> None:
        if not isinstance(exc, LlamalabError):
            log.error("widget error", exc_info=exc)
        self.error = exc
        self.message, self.fix = explain(exc)
        self.value = message_html(self.message, self.fix, kind)

    def clear(self) -> None:
        self.error, self.message, self.fix, self.value = None, "", "", ""


def guarded(errors: ErrorBox) -> Callable:
    """Decorator for event handlers: an exception shows in `errors` instead of escaping as a
    traceback."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                errors.show(e)

        return inner

    return wrap


def launch(widget, wait: bool = False) -> None:
    """A button's action: one task at a time; an error while starting shows inline;
    wait=True blocks."""
    if widget.busy:
        return
    widget.errors.clear()
    guarded(widget.errors)(widget._start)()
    if wait:
        widget.wait()


def background(
    widget,
    work: Callable[[Task], None],
    done: Callable[[], None] | None = None,
    label: str = "widget",
) -> Task:
    """Run `work(task)` as a thread Task, held as `widget.task` before the work begins (a Stop
    pressed at once reaches it); its error shows in `widget.errors`; `done()` runs after,
    whatever happened (on the task's thread)."""
    held = threading.Event()

    def run(task: Task):
        held.wait()
        return work(task)

    def end(task: Task) -> None:
        if task.state == "failed":
            widget.errors.show(task.error)
        if done is not None:
            guarded(widget.errors)(done)()

    widget.task = tasks.start_thread(run, label=f"llamalab-{label}", on_end=end)
    held.set()
    return widget.task


class Background:
    """What a widget that runs one task at a time shares: `task`, `busy`, `wait()`, `stop()`."""

    task: Task | None = None

    @property
    def busy(self) -> bool:
        return self.task is not None and self.task.running

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the widget's task ends (for notebooks and tests); True if it ended."""
        return self.task is None or self.task.join(timeout)

    def stop(self) -> None:
        """What the Stop button does: ask the task to end (each widget says where it ends)."""
        if self.task is not None:
            self.task.stop()


class Throttle:
    """Calls `fn(value)` at most once per `interval` seconds; the first call goes through at once
    and `flush()` delivers the last value held back. Keeps comm traffic low while text streams
    in."""

    def __init__(self, fn: Callable, interval: float = 0.05):
        self.fn, self.interval = fn, interval
        self._last = 0.0
        self._pending = None
        self._has_pending = False
        self._lock = threading.Lock()

    def __call__(self, value) -> None:
        with self._lock:
            now = time.perf_counter()
            if now - self._last < self.interval:
                self._pending, self._has_pending = value, True
                return
            self._last, self._has_pending = now, False
        self.fn(value)

    def flush(self) -> None:
        with self._lock:
            pending, has, self._has_pending = self._pending, self._has_pending, False
        if has:
            self.fn(pending)


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB"


def html_table(
    rows: list[dict],
    columns: dict[str, Callable | None],
    headers: dict[str, str] | None = None,
    cls: str = "llamalab-table",
) -> str:
    """A small HTML table: `columns` maps a row key to a formatter (None = str);
    `headers` renames keys."""
    names = headers or {}
    head = "".join(
        f"<th style='text-align:left;padding:2px 8px'>{html.escape(names.get(k, k))}</th>"
        for k in columns
    )
    body = "".join(
        "<tr>"
        + "".join(
            "<td style='padding:2px 8px'>"
            f"{html.escape((f or str)(r[k]) if r.get(k) is not None else '')}</td>"
            for k, f in columns.items()
        )
        + "</tr>"
        for r in rows
    )
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def pre(text: str, cls: str = "llamalab-text") -> str:
    """Generated text as preformatted, wrapped, HTML-escaped."""
    return (
        f"<pre class='{cls}' style='white-space:pre-wrap;margin:0;font-size:13px;min-height:1.5em'>"
        f"{html.escape(text)}</pre>"
    )


SPEED_INTERVAL = 0.1  # seconds between live speed-line updates: at most 10 a second


def speed_line(stats: LiveStats | Generation, extra: str = "") -> str:
    """One line of HTML with a response's TTFT, prefill and decode tokens/s, tokens and peak memory,
    from a LiveStats while it streams (marked live) or a finished Generation; labels and hover help
    from the metrics vocabulary. `extra` (HTML) ends the line."""
    live = stats if isinstance(stats, LiveStats) and not stats.done else None
    done = live is None
    decode = stats.decode_tokens_per_s if done or stats.new_tokens > 1 else None
    parts = [
        _figure("ttft_s", stats.ttft_s, "{:.0f}"),
        _figure("prefill_tokens_per_s", stats.prefill_tokens_per_s, "{:.0f}"),
        _figure("decode_tokens_per_s", decode, "{:.1f}"),
        f"<b>{stats.new_tokens}</b> tokens (prompt {_or_dash(stats.prompt_tokens)})",
        _peak(stats.peak_memory_bytes, stats.peak_memory_kind),
    ]
    if live is not None and live.ttft_s is None:
        parts[0] = f"waiting for the first token… {live.elapsed_s:.1f} s"
    state = "done" if done else "live"
    return (
        f"<div class='llamalab-stats llamalab-speed-{state}'>{' · '.join(parts)}"
        f"{' · ' + extra if extra else ''}{'' if done else ' <i>(live)</i>'}</div>"
    )


def _figure(key: str, value: float | None, fmt: str) -> str:
    """'TTFT <b>132 ms</b>': the metric's label split into its name and unit, its help on hover."""
    m = metric(key)
    name, unit = _name_and_unit(m.label, m.unit)
    shown = "—" if value is None or value != value else fmt.format(m.show(value))
    return f"<span title='{html.escape(m.help)}'>{name} <b>{shown} {unit}</b></span>"


def _name_and_unit(label: str, unit: str) -> tuple[str, str]:
    if label.endswith(")") and " (" in label:  # "TTFT (ms)"
        name, shown = label[:-1].split(" (", 1)
        return name, shown
    if label.endswith(unit):  # "decode tokens/s"
        return label[: -len(unit)].strip(), unit
    return label, unit


def _peak(value: int | None, kind: str) -> str:
    """The peak memory figure and what it counts; for a remote engine, that it is the server's."""
    m = metric("peak_memory_bytes")
    name, unit = _name_and_unit(m.label, m.unit)
    if kind == memory.REMOTE:
        return f"<span title='{html.escape(kind)}'>{name} <b>server</b>: not measured here</span>"
    shown = "—" if value is None else f"{m.show(value):.0f}"
    counts = f" <span title='{html.escape(kind)}'>({html.escape(kind)})</span>" if kind else ""
    return f"<span title='{html.escape(m.help)}'>{name} <b>{shown} {unit}</b></span>{counts}"


def _or_dash(value) -> str:
    return "—" if value is None else str(value)
