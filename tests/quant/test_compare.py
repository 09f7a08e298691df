"""compare() on the real embedded model: one tidy row per scheme × prompt with the metrics
vocabulary's columns; failures become rows. (The sweep's logic is tested fast against a scripted
engine: test_sweep.py.)"""

import pytest

import llamalab
from llamalab import summarize
from llamalab.measure.sweep import COLUMNS
from llamalab.plots import compare as plots

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def table(embedded_dir):
    schemes = ["bf16", "q4_1", "not-a-scheme"]
    return llamalab.compare(
        "default",
        schemes=schemes,
        prompts=["Hi", "Name a colour."],
        max_new_tokens=6,
        quality_tokens=200,
        quality_window=128,
    )


def test_shape_and_columns(table):
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == 2 + 2 + 1  # 2 prompts × 2 schemes + 1 error row
    ok = table[table.error.isna()]
    assert set(ok.scheme) == {"bf16", "q4_1"} and set(ok.engine) == {"transformers", "llama.cpp"}


def test_units_and_values(table):
    ok = table[table.error.isna()]
    assert (ok.new_tokens == 6).all()  # fixed length
    assert (ok.decode_tokens_per_s > 0).all() and (ok.ttft_s > 0).all() and (ok.ttft_s < 60).all()
    assert (ok.weights_disk_bytes > 50e6).all() and (ok.weights_memory_bytes > 50e6).all()
    assert (ok.peak_memory_bytes > 100e6).all() and ok.peak_memory_kind.str.contains("RSS").all()
    assert (ok.load_s > 0).all() and ok.load_memory_kind.notna().all()
    assert (
        (ok.perplexity > 1).all()
        and (ok.ppl_window == 128).all()
        and (ok.ppl_text == "kjv-luke-1-4").all()
    )
    bf16 = ok[ok.scheme == "bf16"].iloc[0]
    assert bf16.kl_vs_reference == pytest.approx(0, abs=1e-6) and bf16.top1_vs_reference == 1
    q = ok[ok.scheme == "q4_1"].iloc[0]
    assert q.weights_disk_bytes < bf16.weights_disk_bytes and q.kl_vs_reference > 0


def test_failed_scheme_is_a_row_with_the_reason(table):
    err = table[table.scheme == "not-a-scheme"].iloc[0]
    assert "Unknown scheme" in err.error


def test_figures(table):
    s = summarize(table)
    assert list(s.scheme) == ["bf16", "q4_1", "not-a-scheme"] and s.error.notna().tolist() == [
        False,
        False,
        True,
    ]
    assert len(plots.bars(table, "decode_tokens_per_s").data[0].x) == 2
    assert len(plots.overview(table).data) == 4
    t = plots.tradeoff(table)
    assert (
        list(t.data[0].text) == ["bf16", "q4_1"]
        and t.layout.xaxis.title.text == "weights in memory (MB)"
    )
