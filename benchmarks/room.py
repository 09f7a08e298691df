"""One model server for a room: N simulated learners against one `serve_room()` server on this
machine, each sending a course prompt, reading the answer, thinking (exponential, mean --think s)
and sending again (llamalab.load_test with think_s). Per level of learners: TTFT p50/p90, decode
tokens/s per learner (1 / TPOT), errors; then how many learners this box holds at a TTFT p90
target (linear interpolation between the measured levels), and the same arithmetic for a GPU
server from llamalab.deployment_plan + the speed law (estimated, not measured).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/room.py --learners 10 25 50 --duration 60

Writes benchmarks/results/room.json and room.md. The load average is recorded before and after:
run it on a quiet machine for numbers to quote.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from itertools import pairwise
from pathlib import Path

import llamalab
from llamalab.data import texts
from llamalab.workshop import serve_room

OUT = Path(__file__).parent / "results"
PASSAGE = " ".join(texts.heldout().text.split()[:180])
PROMPTS = (  # what learners type in notebooks 00-04: short questions to a pasted passage
    "What is the capital of France?",
    "Name three primary colours.",
    "Explain what quantization does to a neural network in three sentences.",
    "Write a haiku about a small language model running on a laptop.",
    "What is the difference between RAM and VRAM? Answer in two sentences.",
    "Give me a Python function that reverses a string, with a docstring.",
    "Summarize this passage in two sentences:\n\n" + PASSAGE,
    "List four things that decide how fast a language model generates text.",
)


def main() -> None:
    a = _args()
    load_before = os.getloadavg()
    t0 = time.time()
    with serve_room("default", a.scheme, context=a.context, learners=max(a.learners),
                    threads=a.threads) as room:  # fmt: skip
        print(room.instructions().replace(room.room.token, "…"), flush=True)
        result = llamalab.load_test(
            room.server, list(PROMPTS), concurrency=tuple(a.learners), think_s=a.think,
            duration_s=a.duration, warmup_s=a.warmup, max_new_tokens=a.max_new_tokens,
            ignore_eos=False, timeout=120.0, max_duration_s=a.warmup + a.duration + 130.0,
        )  # fmt: skip
        sizing = room.sizing
    levels = [_level(result, n, a.target) for n in a.learners]
    out = {
        "what": "simulated learners against one room server (llamalab.serve_room + load_test)",
        "machine": {
            "cpu": llamalab.hardware().cpu,
            "cores": llamalab.hardware().cores,
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "settings": {**vars(a), "prompts": len(PROMPTS), "slots": sizing.slots},
        "slot_sizing": list(sizing.reasons),
        "levels": levels,
        "learners_at_target": learners_at(levels, a.target),
        "gpu_estimate": gpu_estimate(a, levels),
        "wall_s": time.time() - t0,
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "room.json").write_text(json.dumps(out, indent=2, default=float))
    (OUT / "room.md").write_text(markdown(out))
    print(markdown(out))


def _args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--learners", type=int, nargs="+", default=[10, 25, 50])
    p.add_argument("--duration", type=float, default=120.0, help="measured seconds per level")
    p.add_argument("--warmup", type=float, default=10.0)
    p.add_argument("--think", type=float, default=20.0, help="mean think time, seconds")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--context", type=int, default=1024)
    p.add_argument("--scheme", default="q8_0")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--target", type=float, default=2.0, help="TTFT p90 target, seconds")
    p.add_argument("--gpu", default="h100-80gb")
    p.add_argument("--gpu-model", default="llama-3.1-8b-instruct")
    p.add_argument("--gpu-scheme", default="q8_0")
    return p.parse_args()


def _level(result, n: int, target: float) -> dict:
    rec = result.records
    rec = rec[(rec["concurrency"] == n) & ~rec["warmup"]]
    ok = rec[rec["ok"]]
    row = result.summary[result.summary["concurrency"] == n].iloc[0]
    decode = (ok["output_tokens"] - 1) / (ok["e2e_s"] - ok["ttft_s"])
    decode = decode[(ok["output_tokens"] > 1)]
    return {
        "learners": n,
        "requests": int(row["requests"]),
        "completed": int(row["completed"]),
        "errors": int(row["errors"]),
        "error_kinds": sorted(set(rec.loc[~rec["ok"], "error"].str[:80])),
        "ttft_p50_s": float(row["ttft_p50_s"]),
        "ttft_p90_s": float(row["ttft_p90_s"]),
        "decode_tokens_per_s_p50": float(decode.median()) if len(decode) else math.nan,
        "decode_tokens_per_s_p10": float(decode.quantile(0.1)) if len(decode) else math.nan,
        "output_tokens_mean": float(ok["output_tokens"].mean()) if len(ok) else math.nan,
        "prompt_tokens_mean": float(ok["prompt_tokens"].mean()) if len(ok) else math.nan,
        "e2e_p50_s": float(row["e2e_p50_s"]),
        "request_throughput": float(row["request_throughput"]),
        "output_throughput": float(row["output_throughput"]),
        "duration_s": float(row["duration_s"]),
        "meets_target": bool(row["ttft_p90_s"] <= target),
    }


def learners_at(levels: list[dict], target: float) -> dict:
    """The learners at which TTFT p90 reaches `target`, interpolated between measured levels."""
    pts = sorted((lv["learners"], lv["ttft_p90_s"]) for lv in levels if lv["errors"] == 0)
    for (n0, t0), (n1, t1) in pairwise(pts):
        if t0 <= target < t1:
            n = n0 + (target - t0) * (n1 - n0) / (t1 - t0)
            return {"learners": int(n), "how": f"interpolated between {n0} and {n1} learners"}
    if pts and pts[-1][1] <= target:
        return {"learners": pts[-1][0], "how": f"at least: the most measured ({pts[-1][0]}) met it"}
    if pts and pts[0][1] > target:
        return {"learners": 0, "how": f"fewer than {pts[0][0]}: the fewest measured missed it"}
    return {"learners": None, "how": "no level completed without errors"}


def gpu_estimate(a, levels: list[dict]) -> dict:
    """The same arithmetic for a GPU room server, estimated: the plan's slots and the speed law's
    decode at that batch; learners ≈ requests/s it sustains × (think + answer time) at 70 % busy."""
    plan = llamalab.deployment_plan(a.gpu_model, a.gpu_scheme, a.gpu, context=a.context)
    slots = max(1, min(int(plan.max_concurrency), max(a.learners)))  # size_slots' rule
    roof = llamalab.roofline(a.gpu_model, a.gpu_scheme, a.gpu, a.context, batch=slots)
    tokens = next((lv["output_tokens_mean"] for lv in levels if lv["completed"]), a.max_new_tokens)
    per_seq = roof["tokens_per_s_per_sequence"]
    answer_s = tokens / per_seq
    req_s = roof["tokens_per_s_total"] / tokens
    learners = int(0.7 * req_s * (a.think + answer_s))
    total = roof["tokens_per_s_total"]
    return {
        "label": "estimated, not measured (deployment_plan + roofline: bandwidth ÷ bytes/step)",
        "model": a.gpu_model,
        "scheme": a.gpu_scheme,
        "gpu": a.gpu,
        "kv_slots_by_memory": plan.max_concurrency,
        "slots": slots,
        "decode_tokens_per_s_per_learner": per_seq,
        "decode_tokens_per_s_total": total,
        "tokens_per_answer": tokens,
        "requests_per_s": req_s,
        "learners_at_70pct_busy": learners,
        "arithmetic": f"{slots} slots × {per_seq:.0f} tok/s = {total:.0f} tok/s ÷ {tokens:.0f} "
        f"tokens/answer = {req_s:.1f} answers/s; × ({a.think:g} s think + {answer_s:.1f} s "
        f"answer) × 0.7 = {learners} learners",
    }


def _loads(machine: dict, when: str) -> str:
    return " / ".join(f"{x:.1f}" for x in machine[f"load_average_{when}"])


def markdown(out: dict) -> str:
    s, m = out["settings"], out["machine"]
    lines = [
        "# One model server for the room",
        "",
        f"{m['cpu']}, {m['cores']} cores; load average (1/5/15 min) before {_loads(m, 'before')}, "
        f"after {_loads(m, 'after')}: rerun on a quiet machine before quoting.",
        f"Model default ({s['scheme']}), {s['slots']} slots of {s['context']} tokens, "
        f"{s['threads'] or 'all'} llama.cpp thread(s); think time "
        f"exponential, mean {s['think']:g} s; {s['prompts']} course prompts; up to "
        f"{s['max_new_tokens']} new tokens (EOS ends an answer); {s['duration']:g} s measured per "
        f"level after {s['warmup']:g} s warm-up.",
        "",
        "| learners | requests | errors | TTFT p50 s | TTFT p90 s | decode tok/s per learner "
        "(p50 / p10) | answers/s |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {lv['learners']} | {lv['completed']}/{lv['requests']} | {lv['errors']} | "
        f"{lv['ttft_p50_s']:.2f} | {lv['ttft_p90_s']:.2f} | {lv['decode_tokens_per_s_p50']:.1f} / "
        f"{lv['decode_tokens_per_s_p10']:.1f} | {lv['request_throughput']:.2f} |"
        for lv in out["levels"]
    ]
    at, g = out["learners_at_target"], out["gpu_estimate"]
    lines += [
        "",
        f"Learners this box holds at TTFT p90 ≤ {s['target']:g} s: {at['learners']} ({at['how']}).",
        "",
        "Slot sizing: " + " ".join(out["slot_sizing"]),
        "",
        f"GPU room ({g['label']}): {g['model']} {g['scheme']} on {g['gpu']}: {g['arithmetic']}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
