"""What the widgets cost and whether they show the library's real speed, measured in a real
ipykernel (started with jupyter_client, so widget updates travel as comm messages, as in JupyterLab
minus the browser).

* speed (issue 11): per scheme, decode tokens/s through the Playground's path (a widget worker
  thread waiting on the runtime's torch thread) ÷ `generate()` from the kernel's main thread; same
  model, prompt and exactly N new tokens; back-to-back pairs, order alternating, one process.
  Reported: the median of each, the ratio of the medians and the median of the per-pair ratios.
  Goal: >= 0.95.
  gptq-4bit / awq-4bit need quantized checkpoints: `--build` makes missing ones (llamalab.quantize,
  minutes), otherwise they are reported as missing.
* latency: Playground Generate → first text piece in the output widget; Stop → worker finished
  (bf16). Goal: no worse than before the torch thread (0.08 s / 0.035 s).
* monitor: the same generation with and without a running LiveMonitor at 4 Hz (goal: <= 2 % slower).
* live (issue 22): decode tokens/s of the Playground, whose speed line updates live (TTFT, prefill
  and decode tokens/s, peak memory: at most 10 updates a second), ÷ streaming the same generation
  without a widget (`generate(on_text=...)` on a worker thread), per scheme: bf16 (tokens cross
  from the torch thread) and q4_1 (llama.cpp in-process: the widget's update runs between two
  tokens on the same thread).
  Also the speed line's own cost per update. Goal: <= 2 % slower.
* arena: the Arena's decode tokens/s ÷ `compare()`'s, per scheme (goal: within 5 %). Each side of a
  pair loads the scheme and times `--generations` generations of the prompt; its figure is their
  median, as the Arena's table and `summary` show it (more generations per load: less noise per
  pair). `--reuse-load` loads each scheme once and hands that model to both sides (their `load=`
  hook; unload is skipped), so a pair differs only in the path the tokens take, not in a fresh
  load's speed.

Browser-side numbers come from the browser test (test-artifacts/timings.json), copied in when
present.

    python benchmarks/widgets.py                                   # everything, on a quiet machine
    python benchmarks/widgets.py --parts speed --schemes bf16 --runs 3 --tokens 32   # a quick check
    python benchmarks/widgets.py --pool benchmarks/results/widgets*.json   # pool many runs' pairs
    python benchmarks/widgets.py --parts live --schemes bf16,q4_1 --out \
        benchmarks/results/widgets-live.json                       # the live speed line's cost

Writes benchmarks/results/widgets.json. Numbers are never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # also inside the kernel, which loads this file by path
from pairs import alternating  # noqa: E402

REPO = HERE.parent
PROMPT = "Tell me a long story about a dragon who learns to read."
SCHEMES = "bf16,fp16,int8,gptq-4bit,awq-4bit,nf4"
PARTS = ("speed", "latency", "monitor", "arena", "live")
med = statistics.median


# ---------------------------------------------------------------- run inside the kernel


def in_kernel(opts: dict) -> dict:
    """Every part asked for, in this (kernel) process; the main thread never runs torch itself."""
    out = {}
    if "speed" in opts["parts"]:
        out["speed"] = [
            speed(s, opts["runs"], opts["tokens"], opts["build"]) for s in opts["schemes"]
        ]
    if "latency" in opts["parts"]:
        out["latency"] = latency(opts["runs"])
    if "monitor" in opts["parts"]:
        out["monitor"] = monitor_overhead(opts["runs"], opts["tokens"])
    if "live" in opts["parts"]:
        out["live"] = [live_overhead(s, opts["runs"], opts["tokens"]) for s in opts["schemes"]]
    if "arena" in opts["parts"]:
        out["arena"] = arena_vs_compare(
            opts["schemes"],
            opts["runs"],
            opts["tokens"],
            opts["build"],
            opts["generations"],
            opts["reuse_load"],
        )
    return out


def load(scheme: str, build: bool):
    """The embedded model under `scheme`; --build makes a missing GPTQ/AWQ checkpoint first."""
    import llamalab

    try:
        return llamalab.load("default", scheme, device="cpu"), ""
    except llamalab.LlamalabError as e:
        if not (build and scheme.startswith(("gptq", "awq"))):
            return None, e.message
    llamalab.quantize("default", scheme, progress=False)
    return llamalab.load("default", scheme, device="cpu"), ""


def warm_playground(scheme: str, tokens: int, build: bool):
    """(model, a Playground on it in chat mode making exactly `tokens` tokens, ""), warmed up; or
    (None, None, why the scheme is missing)."""
    from llamalab.widgets import Playground

    m, missing = load(scheme, build)
    if m is None:
        return None, None, missing
    m.generate(PROMPT, max_new_tokens=8)  # warm-up
    pg = Playground(m, monitor=False, prompt=PROMPT, max_new_tokens=tokens)
    pg.mode.value, pg.ignore_eos.value = "chat", True
    return m, pg, ""


def speed(scheme: str, runs: int, tokens: int, build: bool) -> dict:
    m, pg, missing = warm_playground(scheme, tokens, build)
    if m is None:
        return {"scheme": scheme, "missing": missing}

    def cell():
        g = m.generate(
            PROMPT, max_new_tokens=tokens, min_new_tokens=tokens, system=pg.system.value.strip()
        )  # the Playground's system prompt: the same prompt
        cells.append(g.decode_tokens_per_s)

    def widget():
        pg.generate(wait=True)
        assert pg.last is not None and pg.last.new_tokens == tokens, pg.errors.message
        widgets.append(pg.last.decode_tokens_per_s)

    cells, widgets = [], []
    alternating(runs, cell, widget)
    m.unload()
    ratios = [b / a for a, b in zip(cells, widgets)]
    return {
        "scheme": scheme,
        "cell_decode_tokens_per_s": cells,
        "playground_decode_tokens_per_s": widgets,
        "median_cell": med(cells),
        "median_playground": med(widgets),
        "ratio_of_medians": med(widgets) / med(cells),
        "median_pair_ratio": med(ratios),
    }


def latency(runs: int) -> dict:
    from llamalab.widgets import Playground

    m, _ = load("bf16", False)
    pg = Playground(m, monitor=True, prompt=PROMPT)
    pg.max_new_tokens.value, pg.ignore_eos.value = 2048, True
    first, stops = [], []
    for _ in range(runs):
        seen = threading.Event()
        watch = lambda ch, seen=seen: pg.text and seen.set()  # the output now shows generated text
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
    m.unload()
    return {
        "generate_to_first_text_s": first,
        "stop_to_worker_done_s": stops,
        "median_generate_to_first_text_s": med(first),
        "median_stop_to_worker_done_s": med(stops),
    }


def monitor_overhead(runs: int, tokens: int) -> dict:
    from llamalab.widgets import LiveMonitor

    m, _ = load("bf16", False)
    m.generate(PROMPT, max_new_tokens=8)
    live = LiveMonitor(interval=0.25)
    plain, monitored = [], []

    def once(with_monitor: bool):
        if with_monitor:
            live.start()
        try:
            g = m.generate(PROMPT, max_new_tokens=tokens, min_new_tokens=tokens)
        finally:
            if with_monitor:
                live.stop()
        (monitored if with_monitor else plain).append(g.decode_tokens_per_s)

    alternating(runs, lambda: once(False), lambda: once(True))
    m.unload()
    ratios = [b / a for a, b in zip(plain, monitored)]
    return {
        "without": plain,
        "with_live_monitor": monitored,
        "median_without": med(plain),
        "median_with": med(monitored),
        "overhead_pct": 100 * (1 - med(ratios)),
        "live_monitor_figure_updates": live.pushes,
    }


def live_overhead(scheme: str, runs: int, tokens: int) -> dict:
    """Decode tokens/s: the Playground with its live speed line ÷ streaming without a widget, same
    model, prompt and exactly `tokens` new tokens; back-to-back pairs, order alternating."""
    from llamalab.widgets._common import speed_line

    m, pg, missing = warm_playground(scheme, tokens, False)
    if m is None:
        return {"scheme": scheme, "missing": missing}
    lines: list[str] = []
    pg.stats.observe(lambda ch: lines.append(ch.new), "value")
    plain, widget, updates = [], [], []

    def stream():  # from a worker thread, as the Playground's task: llama.cpp in-process decoded
        # ~10x slower from the main thread of this process (torch imported) than from any other
        g = []
        worker = threading.Thread(
            target=lambda: g.append(
                m.generate(
                    PROMPT,
                    max_new_tokens=tokens,
                    min_new_tokens=tokens,
                    system=pg.system.value.strip(),
                    on_text=lambda _: None,
                )
            )
        )
        worker.start()
        worker.join()
        plain.append(g[0].decode_tokens_per_s)

    def playground():
        lines.clear()
        pg.generate(wait=True)
        assert pg.last is not None and pg.last.new_tokens == tokens, pg.errors.message
        widget.append(pg.last.decode_tokens_per_s)
        updates.append(sum("(live)" in line for line in lines) / pg.last.total_s)
        print(f"live {scheme}: {len(widget)} Playground runs, {len(plain)} streams", flush=True)

    alternating(runs, stream, playground)
    gen = pg.last
    t0 = time.perf_counter()
    for _ in range(1000):
        speed_line(gen)
    line_us = (time.perf_counter() - t0) * 1e3  # 1000 calls: µs each
    m.unload()
    ratios = [b / a for a, b in zip(plain, widget)]
    return {
        "scheme": scheme,
        "engine": m.engine.name,
        "streaming_decode_tokens_per_s": plain,
        "playground_decode_tokens_per_s": widget,
        "live_updates_per_s": updates,
        "median_streaming": med(plain),
        "median_playground": med(widget),
        "ratio_of_medians": med(widget) / med(plain),
        "median_pair_ratio": med(ratios),
        "overhead_pct": 100 * (1 - med(ratios)),
        "speed_line_us": line_us,
    }


def arena_vs_compare(
    schemes: list[str], runs: int, tokens: int, build: bool, generations: int, reuse_load: bool
) -> list[dict]:
    """The Arena's figure (its records) vs compare()'s, per scheme, same prompt and token count. One
    scheme at a time so each pair runs back to back (this VM's speed drifts by tens of % over
    minutes); each side loads, warms up and times the same `generations` generations, so neither
    times later, warmer repeats of one load."""
    from llamalab.widgets import Arena

    prompts = [PROMPT] * generations
    arena = Arena(
        "default", schemes=(), prompt="\n".join(prompts), max_new_tokens=tokens
    )  # set per pair
    rows = []
    for s in schemes:
        model, _ = load(s, build)  # a scheme that cannot load here is left out
        if model is None:
            continue
        kept = Kept(model) if reuse_load else None
        if kept is None:
            model.unload()  # it loads; each side of a pair loads its own
        arena.load = kept
        rows.append(
            {**arena_pairs(arena, s, runs, tokens, build, prompts, kept), "reused_load": reuse_load}
        )
        if kept is not None:
            model.unload()
    return rows


class Kept:
    """A `load=` hook that hands out one loaded model and ignores unload(): both sides of a pair
    then time the same weights in the same memory."""

    def __init__(self, model):
        self.model = model

    def __call__(self, name, scheme, device="cpu"):
        return self

    def unload(self) -> None:
        pass

    def __getattr__(self, attr):
        return getattr(self.model, attr)


def arena_pairs(
    arena, scheme: str, runs: int, tokens: int, build: bool, prompts: list[str], load=None
) -> dict:
    """`runs` pairs for one scheme: an Arena run of that scheme alone and compare(), alternating;
    each side's figure is the median decode tokens/s of its generations (what the Arena's table
    shows)."""
    import llamalab

    ours: list[float] = []
    theirs: list[float] = []

    def run_compare():
        table = llamalab.compare(
            "default",
            [scheme],
            prompts,
            max_new_tokens=tokens,
            repeats=1,
            quality=False,
            fixed_length=False,  # as the Arena: a generation may end at end of sequence
            reference=None,
            quantize_missing=build,
            load=load,
        )
        theirs.append(
            med(table.dropna(subset=["decode_tokens_per_s"])["decode_tokens_per_s"].tolist())
        )

    def run_arena():
        arena.schemes.value = (scheme,)
        arena.run(wait=True)
        ours.append(float(arena.summary.set_index("scheme").loc[scheme, "decode_tokens_per_s"]))

    alternating(runs, run_compare, run_arena)
    ratios = [a / c for a, c in zip(ours, theirs)]
    return {
        "scheme": scheme,
        "generations_per_side": len(prompts),
        "arena": ours,
        "compare": theirs,
        "pair_ratios": ratios,
        "ratio_of_medians": med(ours) / med(theirs) if ours and theirs else None,
        "median_pair_ratio": med(ratios) if ratios else None,
    }


# ---------------------------------------------------------------- the driver

KERNEL_CODE = """
import importlib.util, json
spec = importlib.util.spec_from_file_location("bench_widgets", {path!r})
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
print("RESULT " + json.dumps(bench.in_kernel({opts!r})))
"""


def run_in_kernel(code: str, timeout: float, env: dict | None = None) -> dict:
    """Execute `code` in a fresh python3 kernel and return the JSON it prints after 'RESULT '."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(
        kernel_name="python3", env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    )
    out: list[str] = []
    try:
        reply = kc.execute_interactive(
            code, timeout=timeout, output_hook=lambda msg: _collect(msg, out)
        )
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(
            "\n".join(reply["content"].get("traceback", [])) or "benchmark failed in the kernel"
        )
    line = next(x for x in "".join(out).splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def _collect(msg: dict, out: list[str]) -> None:
    if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
        out.append(msg["content"]["text"])
        if not msg["content"]["text"].startswith("RESULT "):
            print(msg["content"]["text"], end="", file=sys.stderr, flush=True)
    elif msg["msg_type"] == "error":
        out.append("\n".join(msg["content"]["traceback"]))


def report(result: dict) -> None:
    for row in result.get("speed", []):
        if "missing" in row:
            print(f"{row['scheme']:<10} missing: {row['missing']}")
            continue
        print(
            f"{row['scheme']:<10} decode tokens/s: cell {row['median_cell']:.1f}, "
            f"Playground {row['median_playground']:.1f}; ratio {row['ratio_of_medians']:.3f} "
            f"(median pair ratio "
            f"{row['median_pair_ratio']:.3f}; goal >= 0.95)"
        )
    if "latency" in result:
        r = result["latency"]
        print(
            f"Playground: Generate → first text {r['median_generate_to_first_text_s']:.3f} s, "
            f"Stop → done {r['median_stop_to_worker_done_s']:.3f} s "
            "(medians; before: 0.08 s / 0.035 s)"
        )
    if "monitor" in result:
        r = result["monitor"]
        print(
            f"LiveMonitor at 4 Hz: {r['median_without']:.1f} → {r['median_with']:.1f} tokens/s, "
            f"overhead "
            f"{r['overhead_pct']:+.2f} % (median of pair ratios; goal <= 2 %)"
        )
    for row in result.get("live", []):
        if "missing" in row:
            print(f"live {row['scheme']:<10} missing: {row['missing']}")
            continue
        print(
            f"live speed line {row['scheme']:<6} ({row['engine']}): streaming "
            f"{row['median_streaming']:.1f} → Playground {row['median_playground']:.1f} tokens/s, "
            f"overhead {row['overhead_pct']:+.2f} % (median of pair ratios; goal <= 2 %), "
            f"{med(row['live_updates_per_s']):.1f} updates/s, {row['speed_line_us']:.0f} µs each"
        )
    for row in result.get("arena", []):
        ratio, pair = row["ratio_of_medians"], row.get("median_pair_ratio")
        print(
            f"Arena ÷ compare() {row['scheme']:<10} {'n/a' if ratio is None else f'{ratio:.3f}'} "
            f"(median pair ratio {'n/a' if pair is None else f'{pair:.3f}'}; goal 0.95–1.05)"
        )


def pool(files: list[Path]) -> dict:
    """Pair ratios of several result files, per part (Playground ÷ cell, Arena ÷ compare()) and
    scheme: median with a bootstrap 95 % interval, geometric mean and how many pairs were below 1
    (one run's pairs are too few on this VM's noise)."""
    import math
    import random

    ratios: dict[str, list[float]] = {}
    for f in files:
        result = json.loads(f.read_text())
        for row in result.get("speed", []):
            if "missing" not in row:
                ratios.setdefault(f"Playground ÷ cell {row['scheme']}", []).extend(
                    p / c
                    for c, p in zip(
                        row["cell_decode_tokens_per_s"], row["playground_decode_tokens_per_s"]
                    )
                )
        for row in result.get("arena", []):
            ratios.setdefault(f"Arena ÷ compare() {row['scheme']}", []).extend(
                row.get("pair_ratios") or []
            )
    rng, out = random.Random(0), {}
    for key, r in ratios.items():
        boot = sorted(med(rng.choices(r, k=len(r))) for _ in range(4000))
        row = out[key] = {
            "pairs": len(r),
            "median": med(r),
            "ci95": (boot[100], boot[3899]),
            "geomean": math.exp(statistics.fmean(map(math.log, r))),
            "below_1": sum(x < 1 for x in r),
        }
        print(
            f"{key:<28} {len(r):>3} pairs: median {row['median']:.3f} "
            f"(95 % CI {row['ci95'][0]:.3f}–"
            f"{row['ci95'][1]:.3f}), geometric mean {row['geomean']:.3f}, {row['below_1']} below 1"
        )
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schemes", default=SCHEMES, help=f"comma-separated (default {SCHEMES})")
    ap.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}"
    )
    ap.add_argument(
        "--runs",
        type=int,
        default=7,
        help="pairs of runs per scheme (medians need >= 5; 3 for a check)",
    )
    ap.add_argument("--tokens", type=int, default=128, help="new tokens per generation")
    ap.add_argument(
        "--generations", type=int, default=3, help="arena: generations per side of a pair (1-5)"
    )
    ap.add_argument(
        "--reuse-load", action="store_true", help="arena: one load per scheme, shared by both sides"
    )
    ap.add_argument(
        "--build", action="store_true", help="quantize missing GPTQ/AWQ checkpoints first (minutes)"
    )
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument(
        "--code",
        type=Path,
        help="run the library from this checkout instead (an A/B against other "
        "code, e.g. `git worktree add /tmp/old REV`; its widgets/ linked as llamalab/widgets)",
    )
    ap.add_argument("--out", type=Path, default=HERE / "results" / "widgets.json")
    ap.add_argument(
        "--pool",
        type=Path,
        nargs="+",
        help="only report the pairs (speed, arena) pooled over these files",
    )
    args = ap.parse_args(argv)
    if args.pool:
        return pool(args.pool)
    parts = [p for p in args.parts.split(",") if p]
    if set(parts) - set(PARTS) or args.runs < 1 or not 1 <= args.generations <= 5:
        ap.error(
            f"--parts must be among {PARTS}, --runs >= 1 and --generations 1-5 "
            "(the Arena's prompt limit)"
        )
    opts = {
        "schemes": args.schemes.split(","),
        "parts": parts,
        "runs": args.runs,
        "tokens": args.tokens,
        "build": args.build,
        "generations": args.generations,
        "reuse_load": args.reuse_load,
    }
    env = {"PYTHONPATH": str(args.code.resolve())} if args.code else None
    result = run_in_kernel(
        KERNEL_CODE.format(path=str(Path(__file__).resolve()), opts=opts), args.timeout, env
    )
    browser = REPO / "test-artifacts" / "timings.json"
    if browser.exists():
        result["browser"] = json.loads(browser.read_text())
    result["setup"] = {
        **opts,
        "model": "default (SmolLM2-135M-Instruct), cpu",
        "prompt": PROMPT,
        "machine": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": sys.version.split()[0],
        "code": _commit(args.code or REPO),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    report(result)
    print(f"wrote {args.out}")
    return result


def _commit(checkout: Path) -> str:
    import subprocess

    rev = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{rev}{' (modified)' if dirty else ''} at {checkout}"


if __name__ == "__main__":
    main()
