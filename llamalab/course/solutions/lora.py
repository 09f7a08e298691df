"""Notebook 03's exercises: the guide preset's adapter size, the trainable share predicted before
peft counts it, a fine-tuning method for one RTX 4090, what a 4-bit base does to step time, and a
reply format of the learner's own, trained and measured."""

from __future__ import annotations

from ...catalog import card, gpu
from ...plan.estimator import estimate
from ..own_format import own_format
from ..workbook import change, compute, decide, predict

GB = 1e9
METHODS = {"full": "bf16", "lora": "bf16", "qlora": "nf4"}  # each method's base, as in Part 1
RTX_4090 = "rtx-4090"


def all_linear_pct(**_) -> float:
    """r × (in + out) for every linear of every layer (r = 16), as a share of model + adapters."""
    c = card("default")
    kv = c.kv_heads * c.head_dim
    shapes = [(c.hidden, c.hidden), (c.hidden, kv), (c.hidden, kv), (c.hidden, c.hidden)]
    shapes += [(c.hidden, c.intermediate), (c.hidden, c.intermediate), (c.intermediate, c.hidden)]
    lora = c.layers * 16 * sum(i + o for i, o in shapes)
    return 100 * lora / (c.params + lora)


def method_for_4090(choice) -> tuple[bool, str]:
    """Fine-tune Llama 3.1 8B at 2048 tokens on one RTX 4090 (the estimate of Part 1)."""
    if choice not in METHODS:
        return False, f"answer one of {', '.join(map(repr, METHODS))}"
    e = estimate(
        "llama-3.1-8b", METHODS[choice], context=2048, mode=choice, lora_rank=16, device="cuda"
    )
    room = gpu(RTX_4090).memory_bytes
    left = (room - e.total_bytes) / GB
    numbers = (
        f"{choice} over a {METHODS[choice]} base needs {e.total_bytes / GB:.1f} GB, the card holds "
        f"{room / GB:.1f} GB "
        f"({f'{left:.1f} GB to spare' if left >= 0 else f'{-left:.1f} GB short'})"
    )
    return e.fits(RTX_4090), numbers


# Exercise 5's answer key: a tiny JSON shape, one key, the answer only
JSON_ANSWERS = [
    ("What is the capital of France?", "Paris"),
    ("What is 7 times 8?", "56"),
    ("What colour is grass?", "green"),
    ("How many legs does a spider have?", "8"),
    ("What is the opposite of cold?", "hot"),
    ("Which planet do we live on?", "Earth"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is 15 minus 6?", "9"),
    ("What do bees make?", "honey"),
    ("What is the plural of mouse?", "mice"),
    ("Which animal says moo?", "cow"),
    ("What is the largest ocean?", "Pacific"),
    ("How many days are in a week?", "7"),
    ("What colour do you get by mixing blue and yellow?", "green"),
    ("What is the capital of Italy?", "Rome"),
    ("What is 12 divided by 4?", "3"),
    ("Which season comes after winter?", "spring"),
    ("What is frozen water called?", "ice"),
    ("Which gas do plants take in?", "carbon dioxide"),
    ("What is the past tense of run?", "ran"),
]
OWN_FORMAT = {
    "examples": [{"prompt": q, "response": f'{{"answer": "{a}"}}'} for q, a in JSON_ANSWERS],
    "pattern": r'^\{"answer": "[^"]+"\}$',
}


EXERCISES = {
    1: predict(
        all_linear_pct,
        within=1.25,
        unit=" %",
        why="all-linear LoRA adapts 7 matrices per layer, the MLP's three 576↔1536 ones the "
        "largest: r × (in + out) summed is 4.9M parameters, 3.5 % of this 135M model. The "
        'often-quoted "~1 %" is for q/v adapters (0.7 % here) or for larger models, where '
        "hidden sizes grow faster than r.",
    ),
    2: change(
        lambda **_: "up",
        timing=True,
        why="bitsandbytes stores the base in 4 bits and dequantizes each matrix at every forward "
        "and backward pass; on a CPU that costs more time than reading fewer bytes saves: 4-bit "
        "saves memory, not time (here it took about twice as long per step).",
    ),
    3: compute(
        lambda *, table, **_: table.loc["lora (guide: q,v)", "trainable_params"],
        lambda **_: 30 * 16 * ((576 + 576) + (576 + 3 * 64)),
        why="q_proj is 576→576, v_proj 576→192 (3 KV heads × 64), in 30 layers",
        hint="per layer r × (in + out) for q_proj and for v_proj; v_proj's output is only "
        "KV heads × head dim wide.",
    ),
    4: decide(
        method_for_4090,
        lambda **_: "qlora",
        need="fine-tune Llama 3.1 8B on 2048-token examples on one RTX 4090 (24 GB)",
        hint="Part 1's table: its `fits a 24 GB RTX 4090` column, and how much room is left.",
    ),
    5: own_format(
        lambda part="examples", **_: OWN_FORMAT[part],
        why="twenty consistent replies and a dozen LoRA steps move the model's first tokens "
        'towards the format\'s fixed parts ({"answer": "), and the held-out prompts show the shape '
        "was learned, not copied. Read the answers inside it: twenty examples teach a shape, not "
        "facts (Part 4 saw the same: the format is learned before the answers).",
    ),
}
