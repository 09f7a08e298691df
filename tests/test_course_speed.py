"""`llamalab.course.read_speed`: a decode speed placed against this machine's roofline, and the
meaning a learner reads from its share (notebook 00's "what you should see")."""

from dataclasses import dataclass

import pytest

from llamalab.core.hardware import Bandwidth
from llamalab.course import read_speed
from llamalab.course import speed as speed_module
from llamalab.plan.speed import bytes_per_step

GBPS = 10e9


@dataclass
class Measured:  # the fields of a Generation read_speed uses
    decode_tokens_per_s: float
    model: str = "smollm2-135m"
    scheme: str = "bf16"
    prompt_tokens: int = 42
    new_tokens: int = 48


@pytest.fixture
def machine(monkeypatch):
    """A 10 GB/s machine whose load and bf16 support the test sets."""
    state = {"load": 0.1, "bf16": True}
    monkeypatch.setattr(speed_module, "memory_bandwidth", lambda: Bandwidth(GBPS, (GBPS,), 2, 1))
    monkeypatch.setattr(speed_module.os, "getloadavg", lambda: (state["load"], 0.0, 0.0))
    monkeypatch.setattr(speed_module, "cpu_bf16", lambda: state["bf16"])
    return state


def roof(scheme="bf16") -> float:
    return GBPS / bytes_per_step("smollm2-135m", scheme, 90)


def test_the_roofline_is_bandwidth_over_the_bytes_a_token_reads(machine):
    r = read_speed(Measured(0.25 * roof()))
    assert r.roofline_tokens_per_s == pytest.approx(roof())
    assert r.share == pytest.approx(0.25)
    assert r.meaning.startswith("✓") and "25%" in str(r) and "10.0 GB/s" in str(r)


def test_a_low_share_on_a_busy_machine_says_the_cores_are_shared(machine):
    machine["load"] = 64.0
    r = read_speed(Measured(0.01 * roof()))
    assert r.busy and "other work shares the cores" in r.meaning and "bf16" not in r.meaning


def test_a_low_share_in_bf16_without_bf16_instructions_says_so(machine):
    machine["bf16"] = False
    r = read_speed(Measured(0.02 * roof()))
    assert not r.busy and "no bf16 instructions" in r.meaning
    assert "no bf16" not in read_speed(Measured(0.02 * roof("fp32"), scheme="fp32")).meaning


def test_a_quiet_share_on_a_busy_machine_still_warns_that_both_read_low(machine):
    machine["load"] = 64.0
    r = read_speed(Measured(0.3 * roof()))
    assert r.meaning.startswith("✓") and "both lower" in r.meaning
