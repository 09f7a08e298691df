"""The Playground's live speed line against llama.cpp's real server (llamalab.serve() on loopback,
then server.connect()): TTFT and decode tokens/s while the answer streams, the prefill rate once the
server reports the prompt's size, and the memory said to be the server's."""

import pytest
from speed_lines import check_live_line, figure, tokens

from llamalab.widgets import Playground

pytestmark = [pytest.mark.server, pytest.mark.slow]


def test_the_playground_shows_a_served_answers_speed_live(server):
    pg = Playground(server.connect(), prompt="Count from one to twenty.", monitor=False)
    pg.max_new_tokens.value, pg.ignore_eos.value = 24, True
    lines = []
    pg.stats.observe(lambda ch: lines.append(ch.new), "value")
    pg.generate(wait=True)
    g = pg.last
    assert pg.errors.message == "" and g.new_tokens == 24 and g.prompt_tokens > 5
    live = [line for line in lines if "(live)" in line]
    assert live and all(tokens(line) < len(g.token_times) for line in live[:-1]), lines
    for line in live:
        check_live_line(line, g)
        assert figure(line, "prefill") == "— tokens/s"  # the size comes with the last chunk
        assert "peak memory <b>server</b>: not measured here" in line
    final = pg.stats.value
    assert figure(final, "prefill") == f"{g.prefill_tokens_per_s:.0f} tokens/s"
    assert figure(final, "decode") == f"{g.decode_tokens_per_s:.1f} tokens/s"
    assert "peak memory <b>server</b>: not measured here" in final and "(live)" not in final
