"""Settings dataclasses carry their help text; the helpers show it and refuse unknown names."""

from dataclasses import dataclass

import pytest

from llamalab.core.errors import InvalidSetting
from llamalab.core.settings import describe, help_of, names, setting, with_changes


@dataclass(frozen=True)
class Demo:
    rank: int = setting(8, "LoRA rank: columns of each low-rank update.")
    targets: list = setting(["q_proj"], "Which linears get an adapter.", methods=("lora",))


def test_help_and_describe_show_the_same_words():
    assert help_of(Demo, "rank") == "LoRA rank: columns of each low-rank update."
    text = describe(Demo)
    assert "rank = 8\n    LoRA rank" in text and "targets = ['q_proj']" in text
    assert names(Demo) == ["rank", "targets"]


def test_mutable_defaults_are_not_shared():
    a, b = Demo(), Demo()
    a.targets.append("v_proj")
    assert b.targets == ["q_proj"]


def test_unknown_names_get_a_close_match():
    with pytest.raises(InvalidSetting, match="Did you mean rank") as e:
        with_changes(Demo(), rnak=4)
    assert "rank, targets" in e.value.fix
    with pytest.raises(InvalidSetting, match="'alpha'"):
        help_of(Demo, "alpha")
    assert with_changes(Demo(), rank=4).rank == 4
