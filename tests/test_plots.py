"""Figure builders in llamalab.plots: the numbers drawn are the library's numbers (no torch
needed)."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llamalab
from llamalab.core.metrics import metric
from llamalab.plots import (
    PARTS,
    apply_samples,
    arena_figure,
    breakdown_figure,
    gpu_lines,
    kv_by_context,
    kv_figure,
    latency_throughput_figure,
    monitor_figure,
    resync,
    roofline_figure,
    selection_figure,
    update_figure,
)
from llamalab.plots import compare as compare_plots

MODELS = ["smollm2-135m", "llama-3.1-8b", "mixtral-8x7b", "llama-3.1-70b"]
SCHEMES = llamalab.catalog.scheme_names()


def _bar_total(fig, i=0) -> float:
    return sum(t.y[i] for t in fig.data if t.type == "bar")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(MODELS),
    scheme=st.sampled_from(SCHEMES),
    context=st.integers(1, 131072),
    batch=st.integers(1, 64),
    mode=st.sampled_from(["inference", "lora", "qlora", "full"]),
)
def test_stacked_bar_sums_to_estimate_total(model, scheme, context, batch, mode):
    try:
        est = llamalab.estimate(model, scheme, context, batch, mode)
    except llamalab.InvalidSetting:
        return  # e.g. full fine-tuning of a quantized scheme: the library refuses, nothing to draw
    fig = breakdown_figure([est])
    assert math.isclose(_bar_total(fig), est.total_bytes / 1e9, rel_tol=1e-9)
    for part, trace in zip(PARTS, fig.data):
        assert trace.name == part
        assert trace.y[0] == pytest.approx(est.breakdown.get(part, 0) / 1e9)


def test_several_estimates_give_one_bar_each_and_zero_parts_leave_the_legend():
    ests = [llamalab.estimate("llama-3.1-8b", s, 8192) for s in ("bf16", "int8", "gptq-4bit")]
    fig = breakdown_figure(ests)
    assert list(fig.data[0].x) == [
        "llama-3.1-8b · bf16",
        "llama-3.1-8b · int8",
        "llama-3.1-8b · gptq-4bit",
    ]
    assert [round(_bar_total(fig, i), 6) for i in range(3)] == [
        round(e.total_bytes / 1e9, 6) for e in ests
    ]
    visible = {t.name: t.visible for t in fig.data if t.type == "bar"}
    assert (
        visible["weights"] is True and visible["gradients"] == "legendonly"
    )  # inference has no gradients


def test_one_line_per_distinct_gpu_memory_size():
    gpus = [llamalab.gpu(name) for name in llamalab.gpus().name]
    lines = gpu_lines(gpus)
    sizes = sorted({round(g.memory_bytes / 1e9, 1) for g in gpus})
    assert [gb for gb, _ in lines] == sizes
    fig = breakdown_figure([llamalab.estimate("llama-3.1-8b")], gpus)
    assert len(fig.layout.shapes) == len(sizes)
    assert sorted(s.y0 for s in fig.layout.shapes) == sizes
    rtx = next(label for gb, label in lines if gb == 25.8)  # 24576 and 24564 MiB
    assert "RTX 3090" in rtx and "RTX 4090" in rtx and "24.0 GiB" in rtx  # one shared line


def test_monitor_figure_separates_runs_and_shows_cuda_only_when_present():
    recs = [
        {"t": 0.25, "rss_bytes": 500e6, "tokens_per_s": 0.0, "run": 0},
        {"t": 0.50, "rss_bytes": 600e6, "tokens_per_s": 40.0, "run": 0},
        {"t": 3.00, "rss_bytes": 610e6, "tokens_per_s": 38.0, "run": 1},
    ]
    fig = monitor_figure(recs)
    rss, alloc, reserved, tps = fig.data
    assert list(rss.x) == [0.25, 0.5, None, 3.0] and list(rss.y) == [500.0, 600.0, None, 610.0]
    assert list(tps.y) == [0.0, 40.0, None, 38.0] and tps.yaxis == "y2"
    assert alloc.visible is False and reserved.visible is False
    apply_samples(fig, [dict(r, cuda_allocated_bytes=2e9, cuda_reserved_bytes=3e9) for r in recs])
    assert fig.data[1].visible is True and list(fig.data[2].y) == [3000.0, 3000.0, None, 3000.0]


def test_monitor_figure_takes_real_monitor_samples():
    with llamalab.Monitor(interval=0.02) as mon:
        sum(range(200_000))
        llamalab.core.memory.count_tokens(5)
        import time

        time.sleep(0.1)
    fig = monitor_figure(mon.to_records())
    assert len(fig.data[0].x) == len(mon.samples) >= 2
    assert all(y > 10 for y in fig.data[0].y)  # RSS of a Python process is > 10 MB
    assert sum(fig.data[3].y) > 0  # the 5 counted tokens show as a rate


def test_arena_figure_draws_medians_and_leaves_failures_out():
    recs = [
        {"scheme": "bf16", "ttft_s": 0.1, "decode_tokens_per_s": 40, "peak_memory_bytes": 7e8},
        {"scheme": "bf16", "ttft_s": 0.3, "decode_tokens_per_s": 20, "peak_memory_bytes": 8e8},
        {"scheme": "bf16", "ttft_s": 0.2, "decode_tokens_per_s": 30, "peak_memory_bytes": 9e8},
        {"scheme": "nf4", "error": "cannot run"},
        {"scheme": "int8", "ttft_s": 0.5, "decode_tokens_per_s": 10, "peak_memory_bytes": 5e8},
    ]
    fig = arena_figure(recs)
    assert len(fig.data) == 3 and list(fig.data[0].x) == ["bf16", "int8"]
    assert list(fig.data[0].y) == pytest.approx([200.0, 500.0])  # median TTFT, drawn in ms
    assert list(fig.data[1].y) == [30, 10]
    titles = [a.text for a in fig.layout.annotations]
    assert [
        metric(k).label for k in ("ttft_s", "decode_tokens_per_s", "peak_memory_bytes")
    ] == titles[:3]
    with_quality = arena_figure([dict(r, perplexity=12.5) for r in recs])
    assert len(with_quality.data) == 4 and "perplexity per token" in [
        a.text for a in with_quality.layout.annotations
    ]


def test_comparison_figures_take_titles_and_scales_from_the_metrics_vocabulary():
    import pandas as pd

    df = pd.DataFrame(
        [
            {
                "model": "m",
                "scheme": s,
                "engine": "transformers",
                "weights_memory_bytes": w,
                "decode_tokens_per_s": d,
                "perplexity": p,
                "kl_vs_reference": k,
            }
            for s, w, d, p, k in (("bf16", 270e6, 20, 16.8, 0.0), ("int8", 160e6, 10, 17.0, 0.01))
        ]
    )
    bars = compare_plots.bars(df, "weights_memory_bytes")
    assert bars.layout.yaxis.title.text == "weights in memory (MB)" and list(bars.data[0].y) == [
        270,
        160,
    ]
    t = compare_plots.tradeoff(df)
    assert (t.layout.xaxis.title.text, t.layout.yaxis.title.text) == (
        "weights in memory (MB)",
        "decode tokens/s",
    )
    assert [a.text for a in compare_plots.overview(df).layout.annotations][:2] == [
        "weights in memory (MB)",
        "decode tokens/s",
    ]
    names = [tr.name for tr in monitor_figure([]).data]
    assert names == ["process RSS", "CUDA allocated", "CUDA reserved", "tokens/s"]


def test_update_figure_restyles_or_replaces_traces_and_resyncs():
    fw = go.FigureWidget(breakdown_figure([llamalab.estimate("llama-3.1-8b")]))
    est = llamalab.estimate("llama-3.1-70b", "int8", 32768)
    update_figure(fw, breakdown_figure([est], title="70b"))
    assert _bar_total(fw) == pytest.approx(est.total_bytes / 1e9)
    assert fw.layout.title.text == "70b"
    assert fw._widget_data == fw._data  # views opened later see the new bars
    update_figure(
        fw,
        arena_figure(
            [{"scheme": "bf16", "ttft_s": 0.1, "decode_tokens_per_s": 1, "peak_memory_bytes": 1}]
        ),
    )
    assert [t.type for t in fw.data] == ["bar"] * 3 and fw._widget_data == fw._data


def test_resync_fixes_the_stale_widget_state_plotly_leaves_behind():
    """Pins the private plotly attributes resync relies on (pitfall P1): if this fails after a
    plotly upgrade, resync needs a new implementation."""
    fw = go.FigureWidget(monitor_figure([]))
    with fw.batch_update():
        apply_samples(fw, [{"t": 1.0, "rss_bytes": 1e9, "tokens_per_s": 3.0}])
    assert fw._widget_data[0].get("x", []) in ([], ())  # stale: plotly only sent a delta
    resync(fw)
    assert fw._widget_data[0]["x"] == [1.0] and fw._widget_layout == fw._layout_obj._props
    resync(go.Figure())  # a plain figure is left alone


# ---- the canonical figures: each drawn from the kit's own numbers -------------------------------
GB = 1e9


def _y_at(trace, x: float) -> float:
    return trace.y[list(trace.x).index(x)]


def test_roofline_lines_meet_each_gpu_at_the_kit_s_roofline():
    pairs = [("llama-3.1-8b", "bf16"), ("llama-3.1-70b", "int8"), ("mixtral-8x7b", "bf16")]
    gpus = ["rtx-4090", "a100-80gb", "h200"]
    fig = roofline_figure([llamalab.roofline(m, s, "h100-80gb") for m, s in pairs], gpus=gpus)
    for (model, scheme), line in zip(pairs, fig.data):
        assert line.name.startswith(f"{model} · {scheme}")
        for g in gpus:
            x = llamalab.gpu(g).bandwidth_bytes_s / GB
            expected = llamalab.roofline(model, scheme, g)["tokens_per_s_per_sequence"]
            assert _y_at(line, x) == pytest.approx(expected, rel=1e-9)
    marks = sorted(s.x0 for s in fig.layout.shapes)
    assert marks == sorted(llamalab.gpu(g).bandwidth_bytes_s / GB for g in gpus)
    assert (
        fig.layout.xaxis.type == "log" and fig.layout.xaxis.title.text == "memory bandwidth (GB/s)"
    )


def test_roofline_measured_point_sits_under_its_own_ceiling():
    run = {"label": "embedded", "bandwidth_bytes_s": 14e9, "decode_tokens_per_s": 45.0}
    fig = roofline_figure(
        [llamalab.roofline("llama-3.1-8b", "q4_k_m", "h100-80gb")],
        measured=[dict(run, weights_memory_bytes=0.27e9)],
    )
    _, ceiling, point = fig.data
    assert (point.x[0], point.y[0]) == (14.0, 45.0) and point.mode == "markers"
    assert _y_at(ceiling, 14.0) == pytest.approx(14e9 / 0.27e9)  # bandwidth ÷ bytes per token
    assert "87% of its ceiling" in point.hovertemplate  # 45 of 51.9 tokens/s
    assert len(roofline_figure([], measured=[run]).data) == 1  # no bytes given: no ceiling drawn


def test_kv_lines_are_the_estimator_s_and_multi_head_is_higher_by_the_head_ratio():
    df = kv_by_context(["llama-3.1-8b", "llama-3.1-70b", "llama-2-13b"], contexts=(4096, 32768))
    at_32k = df[(df.context == 32768) & (df.attention == "grouped-query")].set_index("model")
    for m in ("llama-3.1-8b", "llama-3.1-70b"):
        kv = llamalab.estimate(m, "bf16", context=32768).breakdown["kv_cache"]
        assert at_32k.loc[m, "kv_cache_bytes"] == kv
        c = llamalab.card(m)
        mine = df[df.model == m].pivot(
            index="context", columns="attention", values="kv_cache_bytes"
        )
        ratio = mine["multi-head"] / mine["grouped-query"]
        assert (ratio == c.heads / c.kv_heads).all()  # 4× for 8B, 8× for 70B
    assert set(df[df.model == "llama-2-13b"].attention) == {"grouped-query"}  # no GQA: no twin
    fig = kv_figure(["llama-3.1-8b"], contexts=(4096, 32768), gpus=["rtx-4090", "h100-80gb"])
    gqa, mha = fig.data
    assert list(gqa.y) == pytest.approx([v / GB for v in mine_8b(4096, 32768)])
    assert mha.line.dash == "dash" and "32 KV heads" in mha.name
    assert sorted(s.y0 for s in fig.layout.shapes) == [
        gb for gb, _ in gpu_lines([llamalab.gpu("rtx-4090"), llamalab.gpu("h100-80gb")])
    ]


def mine_8b(*contexts) -> list[int]:
    return [llamalab.estimate("llama-3.1-8b", context=n).breakdown["kv_cache"] for n in contexts]


def _requests(level: int, n: int, ttft: float, e2e: float, tokens: int) -> list[dict]:
    """Records as the load test writes them: `n` requests sent back to back, all completed."""
    return [
        {
            "concurrency": level,
            "ok": True,
            "status": "ok",
            "sent_late": False,
            "scheduled_s": i * e2e,
            "send_delay_s": 0.0,
            "ttft_s": ttft * (1 + i / n),
            "e2e_s": e2e,
            "tpot_s": (e2e - ttft) / (tokens - 1),
            "itl_s": [(e2e - ttft) / (tokens - 1)] * (tokens - 1),
            "output_tokens": tokens,
        }
        for i in range(n)
    ]


def test_latency_throughput_points_are_the_load_test_summary_s():
    import pandas as pd

    from llamalab.measure.loadtest import SLO, measured_duration, summarize_level

    levels = [(8, 0.9, 3.0), (1, 0.1, 1.0), (4, 0.3, 1.5)]  # drawn in load order whatever given
    rows = []
    for c, ttft, e2e in levels:
        recs = _requests(c, 6, ttft, e2e, 32)
        rows.append(summarize_level(recs, measured_duration(recs), SLO(), "concurrency", c))
    rows.append(summarize_level([], float("nan"), SLO(), "concurrency", 16))  # nothing completed
    summary = pd.DataFrame(rows)
    fig = latency_throughput_figure(summary, slo_s=0.5)
    p50, p90 = fig.data
    ordered = summary.iloc[[1, 2, 0]]
    assert list(p50.text) == ["c=1", "c=4", "c=8"]  # the empty level is left out
    assert list(p50.x) == pytest.approx(list(ordered.output_throughput))
    assert list(p50.y) == pytest.approx(list(ordered.ttft_p50_s * 1e3))  # TTFT in ms
    assert list(p90.y) == pytest.approx(list(ordered.ttft_p90_s * 1e3))
    assert fig.layout.yaxis.title.text == "TTFT (ms)" and fig.layout.shapes[0].y0 == 500
    e2e = latency_throughput_figure(summary, latency="e2e", percentiles=(99,))
    assert list(e2e.data[0].y) == pytest.approx(list(ordered.e2e_p99_s))  # E2E shown in s
    with pytest.raises(llamalab.InvalidSetting, match="percentiles"):
        latency_throughput_figure(summary, percentiles=(75,))


def test_selection_heatmap_cells_are_best_scheme_s_choice():
    machines = {"RTX 4090": ("rtx-4090", "cuda"), "8 GB edge": (int(6.4e9), "cpu")}
    pools = {"cuda": ["bf16", "int8", "gptq-4bit"], "cpu": ["bf16", "q8_0", "q4_k_m"]}
    models = ["llama-3.2-3b", "llama-3.1-8b", "llama-3.1-70b"]
    grid = llamalab.selection_grid(models, machines, candidates=pools)
    fig = selection_figure(grid)
    heat = fig.data[0]
    assert list(heat.y) == models and list(heat.x) == list(machines)
    for i, m in enumerate(models):
        for j, (gpu, device) in enumerate(machines.values()):
            best = llamalab.best_scheme(m, gpu, 4096, device=device, candidates=pools[device])
            text = heat.text[i][j]
            if best is None:
                assert text == "does not fit" and heat.z[i][j] == 0
            else:
                ctx = llamalab.max_context(m, best, gpu, device=device)
                assert text == f"{best}<br>≤ {ctx // 1024}K"
                assert heat.z[i][j] == llamalab.scheme(best).bits
    assert heat.text[2][0] == "does not fit"  # 70B on one 24 GB card
    with pytest.raises(llamalab.InvalidSetting, match="machines"):
        llamalab.selection_grid(models, ["rtx-4090"])
