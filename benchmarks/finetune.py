"""Fine-tuning, measured: kit step throughput vs a raw peft + torch loop (same model, data, batch,
same process, interleaved blocks), estimated vs measured training peak for lora / qlora / full
(each in a fresh process, so the peak is the run's own), the task gain of notebook 03's run, the
run's thread driver vs a subprocess Task (training tokens/s and the latency of cell-like calls while
it trains), and finetune_compare's four variants (the guide's claims on one table).

    python benchmarks/finetune.py [--parts throughput,memory,gain] [--steps 6]
    python benchmarks/finetune.py --parts drivers --steps 8          # thread vs subprocess driver
    python benchmarks/finetune.py --parts compare --steps 20 --heldout 12   # the four variants
    python benchmarks/finetune.py --memory-one "qlora guide nf4" --steps 3  # one memory row
Writes benchmarks/results/finetune.json (the parts that ran; the others keep their last result).
Numbers are never asserted; run on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import llamalab
from llamalab.train import data as D
from llamalab.train.trainer import collate

OUT = Path(__file__).parent / "results" / "finetune.json"
SETTINGS = dict(
    r=16,
    alpha=32,
    lr=2e-3,
    batch=8,
    max_length=128,
    target_modules="guide",
    eval_every=0,
    warmup_steps=0,
)
COMPARE = dict(
    r=16, alpha=32, batch=2, grad_accum=2
)  # notebook 03's; lr per method (catalog/training_methods.toml)
NOTEBOOK = dict(
    steps=20, lr=3e-3, target_modules="all-linear", r=16, alpha=32, batch=4
)  # notebook 03 (bf16 base) as measured; it now runs batch 2 × grad_accum 2 to stay under 2 GB


def raw_loop(m, examples, batch):
    """The least a peft user writes (get_peft_model, AdamW, linear schedule, clip, step), on the
    torch thread."""

    def build():
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import get_scheduler

        pm = get_peft_model(
            m.engine.model,
            LoraConfig(
                r=16,
                lora_alpha=32,
                lora_dropout=0.05,
                target_modules=["q_proj", "v_proj"],
                task_type="CAUSAL_LM",
            ),
        )
        params = [p for p in pm.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=2e-3)
        return pm, params, opt, get_scheduler("linear", opt, 0, 10_000)

    pm, params, opt, sched = llamalab.on_torch_thread(build)
    tok = m.engine.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def step(k):
        import torch

        pm.train()
        chunk = [examples[(k * batch + i) % len(examples)] for i in range(batch)]
        inputs = collate(chunk, pad, pm.device)
        pm(**inputs).loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        return int(inputs["attention_mask"].sum())

    return step


def throughput(rounds: int, block: int) -> dict:
    """Kit and raw steps in alternating blocks of `block` steps; medians of seconds per step."""
    kit_m, raw_m = llamalab.load("default", "fp32"), llamalab.load("default", "fp32")
    examples = D.tokenize(raw_m.engine.tokenizer, D.conversations("house-format"), 128)
    raw_step = raw_loop(raw_m, examples, SETTINGS["batch"])
    kit_s, raw_s, kit_tok, raw_tok, state = [], [], [], [], {"t": None, "k": 0}

    def after_kit_step(rec):
        now = time.perf_counter()
        if state["t"] is not None:
            kit_s.append(now - state["t"])
            kit_tok.append(rec["tokens"] / (now - state["t"]))
        if rec["step"] % block == 0:  # a block of raw steps, timed one by one
            for _ in range(block):
                t0 = time.perf_counter()
                n = llamalab.on_torch_thread(raw_step, state["k"])
                raw_s.append(time.perf_counter() - t0)
                raw_tok.append(n / raw_s[-1])
                state["k"] += 1
        state["t"] = (
            time.perf_counter()
        )  # the driver submits the next kit step right after this returns

    run = llamalab.finetune(kit_m, "house-format", steps=rounds * block, start=False, **SETTINGS)
    run.on_step(after_kit_step)
    run.start()
    run.wait()
    kit, raw = statistics.median(kit_s), statistics.median(raw_s)
    for m in (kit_m, raw_m):
        m.unload()
    # batches differ in padded length (the kit shuffles), so the ratio is of tokens/s, not steps/s
    return {
        "kit_step_s": kit,
        "raw_step_s": raw,
        "kit_tokens_per_s": statistics.median(kit_tok),
        "raw_tokens_per_s": statistics.median(raw_tok),
        "kit_over_raw_throughput": statistics.median(kit_tok) / statistics.median(raw_tok),
        "kit_steps_timed": len(kit_s),
        "raw_steps_timed": len(raw_s),
        "settings": SETTINGS,
    }


MEMORY_VARIANTS = {  # name: (method, scheme, settings over SETTINGS)
    "lora guide fp32": ("lora", "fp32", {"target_modules": "guide"}),
    "lora all-linear fp32": ("lora", "fp32", {"target_modules": "all-linear"}),
    "lora guide bf16": ("lora", "bf16", {"target_modules": "guide"}),
    "lora all-linear bf16": ("lora", "bf16", {"target_modules": "all-linear"}),
    "qlora guide nf4": ("qlora", "nf4", {"target_modules": "guide"}),
    "qlora all-linear nf4": ("qlora", "nf4", {"target_modules": "all-linear"}),
    "full fp32": ("full", "fp32", {"lr": 5e-5}),
}


def memory_one(variant: str, steps: int, batch: int | None = None) -> dict:
    """One run in this (fresh) process: its measured training peak beside the estimate."""
    method, scheme, extra = MEMORY_VARIANTS[variant]
    run = llamalab.finetune(
        "default",
        "house-format",
        method,
        scheme=scheme,
        steps=steps,
        force=True,
        **{**SETTINGS, **extra, **({"batch": batch} if batch else {})},
    ).wait()
    s = run.to_dict()
    return (
        {"variant": variant}
        | {
            k: s[k]
            for k in (
                "method",
                "scheme",
                "trainable_params",
                "step_s",
                "peak_train_bytes",
                "estimated_train_bytes",
                "train_estimate_error_pct",
                "final_loss",
            )
        }
        | {
            "batch": run.settings.batch,
            "longest_row": run.estimate.context,
            "breakdown": run.estimate.breakdown,
        }
    )


def memory(steps: int, variants=tuple(MEMORY_VARIANTS)) -> list[dict]:
    rows = []
    for variant in variants:
        p = subprocess.run(
            [sys.executable, __file__, "--memory-one", variant, "--steps", str(steps)],
            capture_output=True,
            text=True,
        )
        line = [x for x in p.stdout.splitlines() if x.startswith("{")]
        rows.append(
            json.loads(line[-1]) if line else {"variant": variant, "error": p.stderr[-800:]}
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _probe_while(running, probes: dict) -> None:
    """While `running()`: time a cell-like pure-Python call (GIL contention) and a tiny torch op
    through this process's torch thread (what a notebook's generate/plot would wait for), every 0.1
    s: (when, seconds)."""
    import torch  # noqa: F401 - loaded before timing starts

    while running():
        t0 = time.perf_counter()
        sum(i * i for i in range(20_000))
        t1 = time.perf_counter()
        llamalab.on_torch_thread(_tiny_torch_op)
        probes["python_s"].append((t0, t1 - t0))
        probes["torch_s"].append((t1, time.perf_counter() - t1))
        time.sleep(0.1)


def _tiny_torch_op() -> float:
    import torch

    return float(torch.ones(64).sum())


def _stats(samples: list, since: float = 0.0) -> dict:
    xs = sorted(dt for t, dt in samples if t >= since)
    return (
        {
            "median_ms": 1e3 * statistics.median(xs),
            "p95_ms": 1e3 * xs[int(0.95 * (len(xs) - 1))],
            "max_ms": 1e3 * xs[-1],
            "n": len(xs),
        }
        if xs
        else {}
    )


def drivers(steps: int, batch: int = 4) -> dict:
    """The run's driver thread in this process vs a subprocess Task (llamalab.train.worker):
    training tokens/s (median over steps) and the latency of cell-like calls made while it trains
    (for the subprocess: from its first step on, its start-up excluded and reported as wall_s -
    train_s)."""
    from llamalab.core import tasks

    kw = {**SETTINGS, "batch": batch, "steps": steps}
    idle, left = {"python_s": [], "torch_s": []}, iter(range(10))
    _probe_while(lambda: next(left, None) is not None, idle)
    out = {"idle": {k: _stats(v) for k, v in idle.items()}, "settings": kw}
    t0 = time.perf_counter()
    m = llamalab.load("default", "fp32")
    run = llamalab.finetune(m, "house-format", start=False, **kw)
    probes = {"python_s": [], "torch_s": []}
    run.start()
    _probe_while(lambda: not run.done, probes)
    run.wait()
    out["thread"] = {
        "tokens_per_s": statistics.median(run.history.tokens_per_s),
        "wall_s": time.perf_counter() - t0,
        "train_s": run.history.elapsed_s.iloc[-1],
        **{k: _stats(v) for k, v in probes.items()},
    }
    m.unload()
    seen, probes, t0 = [], {"python_s": [], "torch_s": []}, time.perf_counter()

    def on_event(e):
        if e.get("event") == "step":
            seen.append((time.perf_counter(), e))

    task = tasks.start_process(
        "llamalab.train.worker:train",
        kwargs={"method": "lora", "scheme": "fp32", **kw},
        on_event=on_event,
    )
    _probe_while(lambda: task.running, probes)
    result = task.wait()
    first = seen[0][0] - seen[0][1]["step_s"] if seen else float("inf")
    out["subprocess"] = {
        "tokens_per_s": statistics.median(e["tokens_per_s"] for _, e in seen),
        "wall_s": time.perf_counter() - t0,
        "train_s": seen[-1][1]["elapsed_s"],
        "steps_reported": len(seen),
        "final_loss": result["run"]["final_loss"],
        **{k: _stats(v, first) for k, v in probes.items()},
    }
    out["subprocess_over_thread_tokens_per_s"] = (
        out["subprocess"]["tokens_per_s"] / out["thread"]["tokens_per_s"]
    )
    return out


def gain(n: int) -> dict:
    """Notebook 03's run: compliance on held-out prompts before → after, and its wall time."""
    from llamalab import evaluate
    from llamalab.train.score import house_score

    t0 = time.perf_counter()
    m = llamalab.load("default", "bf16")
    heldout = ("house-format-heldout", "house_format")
    before = house_score(evaluate(m, *heldout, n=n, max_new_tokens=20))
    run = llamalab.finetune(m, "house-format", **NOTEBOOK).wait()
    after = house_score(evaluate(m, *heldout, n=n, max_new_tokens=20))
    return {
        "compliance_before_pct": before.compliance,
        "compliance_after_pct": after.compliance,
        "exact_after_pct": after.exact,
        "heldout_prompts": n,
        "train_s": run.history.elapsed_s.iloc[-1],
        "total_s": time.perf_counter() - t0,
        "settings": NOTEBOOK,
    }


def compare(steps: int, n: int) -> dict:
    """The guide's claims on one table: finetune_compare over the four variants with notebook 03's
    settings (bf16 LoRA base, batch 2 × 2, 12 or --heldout prompts scored, 256 tokens of Luke), no
    memory budget."""
    from llamalab.train.compare import VARIANTS

    t0 = time.perf_counter()
    df = llamalab.finetune_compare(
        variants=list(VARIANTS),
        steps=steps,
        n_heldout=n,
        ppl_tokens=256,
        max_new_tokens=20,
        schemes={"lora": "bf16"},
        **COMPARE,
        on_row=lambda r: print(json.dumps(r, default=str), flush=True),
    )
    return {
        "rows": df.to_dict("records"),
        "steps": steps,
        "heldout_prompts": n,
        "settings": COMPARE,
        "total_s": time.perf_counter() - t0,
    }


PARTS = ("throughput", "memory", "drivers", "compare", "gain")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--parts", default="throughput,memory,gain", help=f"comma-separated, of {', '.join(PARTS)}"
    )
    ap.add_argument("--rounds", type=int, default=4, help="throughput: interleaved rounds")
    ap.add_argument("--block", type=int, default=3, help="throughput: steps per block")
    ap.add_argument(
        "--steps", type=int, default=6, help="memory / drivers: steps per run; compare: per variant"
    )
    ap.add_argument(
        "--heldout", type=int, default=60, help="gain / compare: held-out prompts scored"
    )
    ap.add_argument(
        "--memory-one",
        help="one memory row in this process, printed as JSON (the memory part's child)",
    )
    ap.add_argument(
        "--batch",
        type=int,
        help="--memory-one: override the batch (to separate fixed and per-token memory)",
    )
    a = ap.parse_args()
    if a.memory_one:
        print(json.dumps(memory_one(a.memory_one, a.steps, a.batch)))
        return
    parts = [x for x in a.parts.split(",") if x]
    if set(parts) - set(PARTS):
        ap.error(f"--parts must be among {PARTS}")
    run = {
        "throughput": lambda: throughput(a.rounds, a.block),
        "memory": lambda: memory(a.steps),
        "drivers": lambda: drivers(a.steps),
        "compare": lambda: compare(a.steps, a.heldout),
        "gain": lambda: gain(a.heldout),
    }
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    for (
        part
    ) in parts:  # each part keeps when and under what load it ran; the others stay as they were
        when, load = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()
        out = run[part]()
        results[part] = {
            "when": when,
            "cpus": os.cpu_count(),
            "load_average": [load, os.getloadavg()],
            "result": out,
        }
        print(json.dumps({part: out}, default=str), flush=True)
        OUT.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
