"""Does full fine-tuning forget more than LoRA? A like-for-like rerun on the embedded model: both
methods train with the SAME learning-rate sweep, several seeds each, the same data, steps and
batch, over the same fp32 base; forgetting is the change of per-token NLL on many held-out
passages of general text (so it has a 95 % interval), beside the task gain at each setting.

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/forgetting.py            # the full sweep
    nice -n 19 python benchmarks/forgetting.py --lrs 3e-3 --seeds 0 --methods lora   # one setting
    ... --resume      # keep the runs already in the results file, do the rest

(The recorded sweep ran with one torch thread, niced, on 2 cores other jobs were using.)

The rates: 5e-5 and 3e-3 are the kit's own rates for full fine-tuning and for adapters
(llamalab/catalog/training_methods.toml), 4e-4 their geometric middle; every method runs all three.
Forgetting, per run: mean over passages of (NLL after − NLL before) per token on non-overlapping
128-token passages of KJV Luke 1–4 (the kit's held-out text; never trained on), reported as the
perplexity ratio exp(mean ΔNLL). Its interval is a two-level bootstrap: passages (paired across
runs) and seeds resampled. Task gain: the held-out house-format loss per assistant token (the
first --chats held-out chats, teacher-forced) and format compliance on held-out prompts (greedy).
Writes benchmarks/results/forgetting.json after every run (a cut-short sweep keeps what it did).
Numbers are never asserted; run it niced on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

import llamalab
from llamalab.data import texts
from llamalab.measure.quality import log_probs
from llamalab.train import data as D
from llamalab.train.trainer import collate

OUT = Path(__file__).parent / "results" / "forgetting.json"
LRS = (5e-5, 4e-4, 3e-3)
METHODS = ("full", "lora")
# notebook 03's run (20 steps, batch 2 × 2 accumulated, r=16, alpha 32), the guide's q/v preset
TRAIN = dict(steps=20, batch=2, grad_accum=2, r=16, alpha=32, target_modules="guide", eval_every=0)
PASSAGE = 128  # tokens per held-out passage
RESAMPLES = 4000


def passages(m, n_max: int) -> list[list[int]]:
    """Non-overlapping PASSAGE-token pieces of the held-out text, at most n_max."""
    ids = m.engine.tokenize(texts.heldout().text)
    n = min(n_max, len(ids) // PASSAGE)
    return [ids[i * PASSAGE : (i + 1) * PASSAGE] for i in range(n)]


def passage_nll(m, pieces) -> list[float]:
    """Mean NLL per token of each passage (each scored on its own, no context carried over)."""

    def run():
        out = []
        for p in pieces:
            lp = log_probs(m, p)[:-1]
            target = np.asarray(p[1:])
            out.append(-float(lp[np.arange(len(target)), target].mean()))
        return out

    return llamalab.on_torch_thread(run)


def task_loss(m, convs) -> float:
    """The held-out chats' loss per assistant token, teacher-forced (no generation)."""

    def run():
        import torch

        model, tok = m.engine.model, m.engine.tokenizer
        examples = D.tokenize(tok, convs, 256)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(examples), 8):
                b = collate(examples[i : i + 8], pad, "cpu")
                logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
                labels = b["labels"][:, 1:]
                lp = torch.log_softmax(logits[:, :-1].float(), -1)
                keep = labels != D.IGNORE
                picked = lp.gather(2, labels.clamp(min=0)[..., None])[..., 0]
                total -= float(picked[keep].sum())
                count += int(keep.sum())
        return total / count

    return llamalab.on_torch_thread(run)


def scores(m, pieces, convs, n_prompts: int) -> dict:
    """Everything measured on one model: passage NLLs, task loss, format compliance (and the
    seconds each took)."""
    t0 = time.perf_counter()
    nll = passage_nll(m, pieces)
    t1 = time.perf_counter()
    loss = task_loss(m, convs)
    t2 = time.perf_counter()
    compliance = llamalab.evaluate(
        m, "house-format-heldout", "house_format", n=n_prompts, max_new_tokens=20
    )
    t3 = time.perf_counter()
    return {
        "passage_nll": nll,
        "task_loss": loss,
        "compliance": compliance.score,
        "compliance_n": compliance.n,
        "measure_s": {"passages": t1 - t0, "task_loss": t2 - t1, "compliance": t3 - t2},
    }


def one_run(method: str, lr: float, seed: int, pieces, convs, n_prompts: int) -> dict:
    """Train a fresh fp32 copy of the embedded model, then measure it."""
    out = Path(tempfile.mkdtemp(prefix="forgetting-"))
    t0 = time.perf_counter()
    try:
        m = llamalab.load("default", "fp32", device="cpu")
        run = llamalab.finetune(
            m, "house-format", method, lr=lr, seed=seed, output=out, **TRAIN, start=True
        )
        run.wait()
        train_s = time.perf_counter() - t0
        if run.status != "done":
            return {"method": method, "lr": lr, "seed": seed, "status": run.status}
        after = scores(m, pieces, convs, n_prompts)
        final_loss = run.to_dict()["final_loss"]
        m.unload()
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {
        "method": method,
        "lr": lr,
        "seed": seed,
        "status": "done",
        "trainable_params": run.trainable_params,
        "final_train_loss": final_loss,
        "load_and_train_s": round(train_s, 1),
        "total_s": round(time.perf_counter() - t0, 1),
        **after,
    }


def forgetting(before: list[float], runs: list[dict]) -> np.ndarray:
    """[seed, passage] NLL change per token of the runs of one setting."""
    return np.array([np.array(r["passage_nll"]) - np.array(before) for r in runs])


def boot_mean(d: np.ndarray, rng, resamples=RESAMPLES) -> tuple[float, float, float]:
    """Mean of a [seed, passage] array with a 95 % two-level bootstrap interval."""
    s, p = d.shape
    means = np.empty(resamples)
    for k in range(resamples):
        si, pi = rng.integers(0, s, s), rng.integers(0, p, p)
        means[k] = d[si][:, pi].mean()
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(d.mean()), float(lo), float(hi)


def boot_diff(a: np.ndarray, b: np.ndarray, rng, resamples=RESAMPLES):
    """Mean of a minus mean of b ([seed, passage] each, passages paired), with its interval."""
    means = np.empty(resamples)
    for k in range(resamples):
        pi = rng.integers(0, a.shape[1], a.shape[1])
        sa, sb = rng.integers(0, len(a), len(a)), rng.integers(0, len(b), len(b))
        means[k] = a[sa][:, pi].mean() - b[sb][:, pi].mean()
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(a.mean() - b.mean()), float(lo), float(hi)


def summarize(result: dict) -> dict:
    """Per (method, lr): forgetting as a perplexity ratio with its interval, task loss and
    compliance (mean and range over seeds); and full minus lora at each method's best rate."""
    rng = np.random.default_rng(0)
    before = result["before"]["passage_nll"]
    done = [r for r in result["runs"] if r["status"] == "done"]
    table, grids = [], {}
    for method in METHODS:
        for lr in sorted({r["lr"] for r in done if r["method"] == method}):
            runs = [r for r in done if r["method"] == method and r["lr"] == lr]
            d = forgetting(before, runs)
            grids[(method, lr)] = d
            mean, lo, hi = boot_mean(d, rng)
            tl = [r["task_loss"] for r in runs]
            comp = [r["compliance"] for r in runs]
            table.append(
                {
                    "method": method,
                    "lr": lr,
                    "seeds": len(runs),
                    "ppl_ratio": math.exp(mean),
                    "ppl_ratio_low": math.exp(lo),
                    "ppl_ratio_high": math.exp(hi),
                    "task_loss": float(np.mean(tl)),
                    "task_loss_min": min(tl),
                    "task_loss_max": max(tl),
                    "compliance": float(np.mean(comp)),
                    "compliance_min": min(comp),
                    "compliance_max": max(comp),
                }
            )
    return {"table": table, "full_minus_lora": pairs(table, grids, rng)}


def pairs(table, grids, rng) -> dict:
    """full − lora forgetting (ΔNLL per token, > 0: full forgot more) for pairs of settings: each
    method at its best rate (lowest mean held-out task loss), at the kit's own rate for it, and at
    every rate both ran."""
    rates = {m: {t["lr"]: t for t in table if t["method"] == m} for m in METHODS}
    if not all(rates.values()):
        return {}
    best = {m: min(rows.values(), key=lambda t: t["task_loss"])["lr"] for m, rows in rates.items()}
    chosen = {"best rate each": (best["full"], best["lora"]), "kit's rate each": (5e-5, 3e-3)}
    chosen |= {f"same rate {lr:g}": (lr, lr) for lr in rates["full"] if lr in rates["lora"]}
    out = {}
    for name, (fl, ll) in chosen.items():
        if fl in rates["full"] and ll in rates["lora"]:
            diff, lo, hi = boot_diff(grids[("full", fl)], grids[("lora", ll)], rng)
            out[name] = {
                "full_lr": fl,
                "lora_lr": ll,
                "full_minus_lora_dnll": diff,
                "low": lo,
                "high": hi,
            }
    return out


def arguments():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lrs", default=",".join(map(str, LRS)))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--passages", type=int, default=16, help="held-out passages of 128 tokens")
    p.add_argument("--chats", type=int, default=24, help="held-out chats for the task loss")
    p.add_argument("--prompts", type=int, default=6, help="held-out prompts for compliance")
    p.add_argument("--steps", type=int, default=TRAIN["steps"])
    p.add_argument("--resume", action="store_true", help="keep --out's runs, do the rest")
    p.add_argument(
        "--table", action="store_true", help="print --out's tables (markdown), run nothing"
    )
    p.add_argument("--out", default=str(OUT))
    return p.parse_args()


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def header(a, m, pieces, convs) -> dict:
    """The result's fixed part: what ran, on what, and the base model's scores."""
    return {
        "what": __doc__.split("\n\n")[0].replace("\n", " "),
        "command": "python benchmarks/forgetting.py "
        + " ".join(f"--{k} {v}" for k, v in vars(a).items() if k not in ("out", "resume")),
        "model": m.name,
        "base_scheme": "fp32",
        "torch_threads": llamalab.on_torch_thread(_threads),
        "train": {**TRAIN, "data": "house-format (250 chats)"},
        "text": f"{texts.heldout().name}: {len(pieces)} passages of {PASSAGE} tokens",
        "before": scores(m, pieces, convs, a.prompts),
        "runs": [],
        "segments": [],  # each (re)start: when, and the load average before and after it
    }


def markdown(result: dict) -> str:
    """The summary as two markdown tables: each setting, then full − lora for chosen pairs."""
    s = result["summary"]
    lines = [
        "| method | lr | seeds | perplexity after ÷ before (95 % CI) | held-out task loss "
        "(min–max) | compliance (min–max) |",
        "|---|---|---|---|---|---|",
    ]
    before = result["before"]
    lines.append(
        f"| base | – | – | 1 | {before['task_loss']:.3f} | {100 * before['compliance']:.0f} % |"
    )
    for t in s["table"]:
        lines.append(
            f"| {t['method']} | {t['lr']:g} | {t['seeds']} | {t['ppl_ratio']:.3f} "
            f"({t['ppl_ratio_low']:.3f}–{t['ppl_ratio_high']:.3f}) | {t['task_loss']:.3f} "
            f"({t['task_loss_min']:.3f}–{t['task_loss_max']:.3f}) | {100 * t['compliance']:.0f} % "
            f"({100 * t['compliance_min']:.0f}–{100 * t['compliance_max']:.0f} %) |"
        )
    lines += ["", "| pair | full lr | lora lr | full − lora, ΔNLL per token (95 % CI) |"]
    lines.append("|---|---|---|---|")
    for name, d in s["full_minus_lora"].items():
        lines.append(
            f"| {name} | {d['full_lr']:g} | {d['lora_lr']:g} | {d['full_minus_lora_dnll']:+.4f} "
            f"({d['low']:+.4f} to {d['high']:+.4f}) |"
        )
    return "\n".join(lines)


def main():
    a = arguments()
    if a.table:
        print(markdown(json.loads(Path(a.out).read_text())))
        return
    TRAIN["steps"] = a.steps
    out = Path(a.out)
    convs = D.conversations("house-format-heldout")[: a.chats]
    segment = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    segment["load_average_before"] = os.getloadavg()
    m = llamalab.load("default", "fp32", device="cpu")
    pieces = passages(m, a.passages)
    if a.resume and out.is_file():
        result = json.loads(out.read_text())
        assert len(result["before"]["passage_nll"]) == len(pieces), "--passages differs"
    else:
        result = header(a, m, pieces, convs)
    m.unload()
    result.setdefault("segments", []).append(segment)
    before = result["before"]
    print(
        f"before: task loss {before['task_loss']:.3f}, compliance {before['compliance']:.2f}, "
        f"mean passage NLL {np.mean(before['passage_nll']):.3f} ({before['measure_s']})",
        flush=True,
    )
    done = {(r["method"], r["lr"], r["seed"]) for r in result["runs"]}
    for seed in map(int, a.seeds.split(",")):  # seed outermost: a cut-short sweep has whole sweeps
        for lr in map(float, a.lrs.split(",")):
            for method in a.methods.split(","):
                if (method, lr, seed) not in done:
                    result["runs"].append(one_run(method, lr, seed, pieces, convs, a.prompts))
                    report(result["runs"][-1], before)
                    segment["load_average_after"] = os.getloadavg()
                    segment["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
                    result["summary"] = summarize(result)
                    out.write_text(json.dumps(result, indent=1))
    print(markdown(result))


def report(r: dict, before: dict) -> None:
    """One line per finished run."""
    d = np.mean(r.get("passage_nll", [math.nan])) - np.mean(before["passage_nll"])
    print(
        f"{r['method']} lr {r['lr']:g} seed {r['seed']}: {r['status']}, {r.get('total_s')} s, "
        f"ppl ×{math.exp(d):.3f}, task loss {r.get('task_loss', math.nan):.3f}, "
        f"compliance {r.get('compliance', math.nan):.2f}; load+train "
        f"{r.get('load_and_train_s')} s, measuring {r.get('measure_s')}",
        flush=True,
    )


if __name__ == "__main__":
    main()
