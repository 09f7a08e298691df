"""What the widgets cost: monitor overhead on decode speed, and Stop / first-token latency in a kernel.

Runs inside a real ipykernel (started with jupyter_client), so widget updates really travel as comm
messages, exactly as in JupyterLab minus the browser:

* monitor overhead — the same greedy generation (exactly N tokens) with and without a running
  `LiveMonitor(interval=0.25)` (a `llamalab.Monitor` feeding a plotly FigureWidget at 4 Hz), in
  back-to-back pairs (order alternating), >= 5 pairs, one process. Reported: the median of each
  condition and the median of the per-pair ratios (robust when other jobs load the machine for a
  while: both runs of a pair see about the same load). Goal: <= 2 % slower.
* Playground: Generate → first text piece in the output widget; Stop → worker thread finished.

Browser-side numbers (kernel idle → all widgets rendered, Generate click → first token visible,
Stop click → generation ended as the page sees it) come from the browser test, which writes
test-artifacts/timings.json; they are copied into the result when that file exists.

    python benchmarks/widgets.py --runs 7 --tokens 128
Writes benchmarks/results/widgets.json. Numbers are never asserted: run on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

KERNEL_CODE = textwrap.dedent('''
    import json, statistics, threading, time
    import llamalab
    from llamalab.widgets import LiveMonitor, Playground

    RUNS, TOKENS = {runs}, {tokens}
    PROMPT = "Explain what quantization does to a neural network in three sentences."
    m = llamalab.load("default", "bf16", device="cpu")
    m.generate(PROMPT, max_new_tokens=8)                      # warm-up
    live = LiveMonitor(interval=0.25)

    def once(monitored):
        if monitored:
            live.start()
        try:
            g = m.generate(PROMPT, max_new_tokens=TOKENS, min_new_tokens=TOKENS)
        finally:
            if monitored:
                live.stop()
        assert g.tokens == TOKENS
        print("with" if monitored else "without", "LiveMonitor: %.1f tokens/s" % g.decode_tokens_per_s, flush=True)
        return g.decode_tokens_per_s

    plain, monitored = [], []
    for i in range(RUNS):                                     # pairs, order alternating
        for with_monitor in ((False, True) if i % 2 == 0 else (True, False)):
            (monitored if with_monitor else plain).append(once(with_monitor))
    ratios = [b / a for a, b in zip(plain, monitored)]

    pg = Playground(m, monitor=True, prompt="Tell me a long story about a dragon.")
    pg.max_new_tokens.value, pg.ignore_eos.value = 2048, True
    first, stops = [], []
    for _ in range(3):
        seen = threading.Event()
        watch = lambda ch: pg.text and seen.set()             # the output now shows generated text
        pg.output.observe(watch, "value")
        t0 = time.perf_counter()
        pg.generate_button.click()
        seen.wait(60)
        first.append(time.perf_counter() - t0)
        pg.output.unobserve(watch, "value")
        time.sleep(1.0)
        t0 = time.perf_counter()
        pg.stop_button.click()
        pg.wait(30)
        stops.append(time.perf_counter() - t0)
        assert pg.last.finish_reason == "stopped"

    med = statistics.median
    print("RESULT " + json.dumps({{
        "decode_tokens_per_s_without_monitor": plain, "decode_tokens_per_s_with_live_monitor": monitored,
        "median_without": med(plain), "median_with": med(monitored),
        "monitor_overhead_pct_of_medians": 100 * (1 - med(monitored) / med(plain)),
        "pair_ratios_with_over_without": ratios, "monitor_overhead_pct": 100 * (1 - med(ratios)),
        "live_monitor_figure_updates": live.pushes, "live_monitor_samples": len(live.records),
        "playground_generate_to_first_text_s": first, "playground_stop_to_worker_done_s": stops,
        "median_generate_to_first_text_s": med(first), "median_stop_to_worker_done_s": med(stops)}}))
''')


def run_in_kernel(code: str, timeout: float, env: dict | None = None) -> dict:
    """Execute `code` in a fresh python3 kernel and return the JSON it prints after 'RESULT '."""
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3", env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})
    out: list[str] = []
    try:
        reply = kc.execute_interactive(code, timeout=timeout, output_hook=lambda msg: _collect(msg, out))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    if reply["content"]["status"] != "ok":
        raise RuntimeError("\n".join(reply["content"].get("traceback", [])) or "benchmark failed in the kernel")
    line = next(x for x in "".join(out).splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def _collect(msg: dict, out: list[str]) -> None:
    if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
        out.append(msg["content"]["text"])
        if not msg["content"]["text"].startswith("RESULT "):
            print(msg["content"]["text"], end="", file=sys.stderr, flush=True)
    elif msg["msg_type"] == "error":
        out.append("\n".join(msg["content"]["traceback"]))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9, help="pairs of runs, i.e. runs per condition (>= 5)")
    ap.add_argument("--tokens", type=int, default=128, help="new tokens per generation")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--omp-passive", action="store_true",
                    help="run the kernel with OMP_WAIT_POLICY=PASSIVE: slower on a quiet machine, but immune to "
                         "the collapse of spinning OpenMP threads when other jobs share the cores")
    ap.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/widgets[-omp-passive].json")
    args = ap.parse_args(argv)
    if args.runs < 5:
        ap.error("--runs must be at least 5")
    env = {"OMP_WAIT_POLICY": "PASSIVE"} if args.omp_passive else {}
    result = run_in_kernel(KERNEL_CODE.format(runs=args.runs, tokens=args.tokens), args.timeout, env)
    browser = REPO / "test-artifacts" / "timings.json"
    if browser.exists():
        result["browser"] = json.loads(browser.read_text())
    result["setup"] = {"runs": args.runs, "tokens": args.tokens, "model": "default (SmolLM2-135M-Instruct) bf16 cpu",
                       "omp_wait_policy": env.get("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "default")),
                       "machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                       "python": sys.version.split()[0]}
    args.out = args.out or HERE / "results" / f"widgets{'-omp-passive' if args.omp_passive else ''}.json"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"decode tokens/s, median of {args.runs}: without monitor {result['median_without']:.1f}, "
          f"with LiveMonitor at 4 Hz {result['median_with']:.1f}; overhead {result['monitor_overhead_pct']:+.2f} % "
          f"(median of pair ratios; {result['monitor_overhead_pct_of_medians']:+.2f} % from the medians; goal <= 2 %)")
    print(f"Playground: Generate → first text {result['median_generate_to_first_text_s']:.3f} s, "
          f"Stop → done {result['median_stop_to_worker_done_s']:.3f} s (medians, in the kernel)")
    for k, v in result.get("browser", {}).items():
        print(f"browser: {k} = {v}")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
