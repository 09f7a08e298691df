"""The Playground's live speed line against llama.cpp's real server (llamalab.serve() on loopback,
then server.connect()): TTFT and decode tokens/s while the answer streams, the prefill rate once the
server reports the prompt's size, and the server process's own peak memory (the kit started it, so
its RSS is readable here); a server the kit did not start stays "not measured here"."""

import pytest
from speed_lines import check_live_line, figure, tokens

from llamalab import connect
from llamalab.core import memory
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
        assert memory.SERVER_PEAK in line and int(figure(line, "peak memory").split()[0]) > 0
    final = pg.stats.value
    assert figure(final, "prefill") == f"{g.prefill_tokens_per_s:.0f} tokens/s"
    assert figure(final, "decode") == f"{g.decode_tokens_per_s:.1f} tokens/s"
    after = server.rss_bytes()
    assert g.peak_memory_kind == memory.SERVER_PEAK and g.peak_memory_bytes >= 0.8 * after, after
    assert figure(final, "peak memory") == f"{g.peak_memory_bytes / 1e6:.0f} MB", final
    assert "(live)" not in final


def test_a_server_the_kit_did_not_start_is_not_measured(server, monkeypatch):
    monkeypatch.setenv("LLAMALAB_TEST_SERVER_KEY", server.api_key)
    m = connect(server.url, server.model_id, api_key_env="LLAMALAB_TEST_SERVER_KEY")
    g = m.generate("Say hi.", max_new_tokens=4)
    assert g.peak_memory_kind == memory.REMOTE and g.peak_memory_bytes is None
