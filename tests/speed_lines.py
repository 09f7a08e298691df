"""Reading the speed lines a widget showed (widgets/_common.py speed_line) back in tests, and
checking a live line against the Generation that followed it."""

from __future__ import annotations

import re


def figure(line: str, name: str) -> str:
    """The bold figure after `name` in a speed line: 'TTFT' → '132 ms'."""
    found = re.search(rf"{name} <b>([^<]*)</b>", line)
    assert found, f"no {name} figure in {line!r}"
    return found.group(1)


def tokens(line: str) -> int:
    return int(re.search(r"<b>(\d+)</b> tokens", line).group(1))


def check_live_line(line: str, g) -> None:
    """A line shown while `g` streamed holds g's own figures: its TTFT (fixed at the first token),
    its prefill rate once the prompt's size is known, and a decode rate over g's first j token times
    for some j at least the tokens the line shows (the engine may have moved on between reads) —
    a second stopwatch would not match."""
    assert "(live)" in line
    assert figure(line, "TTFT") == f"{g.ttft_s * 1e3:.0f} ms"
    prefill = figure(line, "prefill")
    assert prefill in ("— tokens/s", f"{g.prefill_tokens_per_s:.0f} tokens/s")
    k, t = tokens(line), g.token_times
    rates = {f"{(j - 1) / (t[j - 1] - t[0]):.1f} tokens/s" for j in range(max(k, 2), len(t) + 1)}
    assert figure(line, "decode") in (rates if k > 1 else rates | {"— tokens/s"})
