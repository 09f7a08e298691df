"""The course as text, read in order without a kernel: no bare `assert` a learner could trip over
(the notebooks' self-checks are `expect()`: ✓/✗ for a learner, raised under the course's tests),
every glossary word defined where it first appears, each notebook's learning time and prerequisites
stated up front, and the kit's internals kept in notebooks/internals.md."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from llamalab.course import CheckFailed, expect

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))  # the course, in its order 00 → 05
GLOSSARY = ROOT / "notebooks" / "glossary.md"
NOCASE = re.IGNORECASE
# glossary anchor -> how a mention of the word looks in a notebook (markdown or code)
TERMS = {
    "hallucination": re.compile(r"\bhallucinat", NOCASE),
    "instruction-following": re.compile(r"instruction[- ]following", NOCASE),
    "confidence-interval": re.compile(r"confidence interval|95 % interval", NOCASE),
    "regular-expression": re.compile(r"regular expression", NOCASE),
    "init-container": re.compile(r"init container", NOCASE),
    "prestop-hook": re.compile(r"preStop", NOCASE),
    "kv-cache": re.compile(r"\bKV[ -]cache|\bkv_cache", NOCASE),
    "prefill": re.compile(r"\bprefill", NOCASE),
    "decode": re.compile(r"\bdecod(e|es|ing)\b", NOCASE),
    "ttft": re.compile(r"\bTTFT\b|time to first token", NOCASE),
    "gguf": re.compile(r"\bGGUF\b"),
    "rss": re.compile(r"\bRSS\b"),
    "quantization": re.compile(r"\bquantiz", NOCASE),
    "roofline": re.compile(r"\broofline", NOCASE),
    "memory-bandwidth": re.compile(r"\bbandwidth", NOCASE),
    "grouped-query-attention": re.compile(r"grouped-query|\bGQA\b", NOCASE),
    "k-quants": re.compile(r"\bk-quant|\bQ4_K_M\b", NOCASE),
    "open-weights": re.compile(r"\bopen[- ]weights?\b", NOCASE),
    "open-source": re.compile(r"\bopen[- ]source\b", NOCASE),
    "mixture-of-experts": re.compile(r"mixture[- ]of[- ]experts|\bMoE\b", NOCASE),
    "perplexity": re.compile(r"\bperplexit", NOCASE),
    "kl-divergence": re.compile(r"\bKL\b|KL divergence"),
    "nats": re.compile(r"\bnats?\b"),
    "top-1-agreement": re.compile(r"\btop-1\b|\btop1", NOCASE),
    "calibration": re.compile(r"\bcalibrat", NOCASE),
    "teacher-forcing": re.compile(r"teacher forcing", NOCASE),
    "entropy": re.compile(r"\bentropy", NOCASE),
    "lora": re.compile(r"\bLoRA\b"),
    "qlora": re.compile(r"\bQLoRA\b"),
    "gradient-checkpointing": re.compile(r"gradient checkpointing", NOCASE),
    "logits": re.compile(r"\blogits?\b", NOCASE),
    "tensor-parallelism": re.compile(r"tensor parallel", NOCASE),
    "continuous-batching": re.compile(r"continuous batching", NOCASE),
    "tpot-and-itl": re.compile(r"\bTPOT\b|\bITL\b"),
    "goodput": re.compile(r"\bgoodput", NOCASE),
    "pipeline-parallelism": re.compile(r"pipeline parallel", NOCASE),
    "pvc": re.compile(r"\bPVC\b"),
    "leaderworkerset": re.compile(r"LeaderWorkerSet"),
}
ASKED = {  # the words issue 20 found used before they were defined
    "kv-cache",
    "perplexity",
    "kl-divergence",
    "top-1-agreement",
    "nats",
    "roofline",
    "prefill",
    "decode",
    "ttft",
    "tpot-and-itl",
    "k-quants",
    "gradient-checkpointing",
    "leaderworkerset",
    "pvc",
}
LEARNING_TIME = re.compile(r"\*\*Learning time\*\* — about \d+(–\d+)? min")
INTERNALS = re.compile(
    r"malloc_trim|OpenMP|huge.pages?\b|AVX-512|file-backed|anonymous pages", NOCASE
)


def cells(path: Path) -> list[dict]:
    import json

    return json.loads(path.read_text())["cells"]


def text(cell: dict) -> str:
    return "".join(cell["source"])


def course(notebooks=NOTEBOOKS) -> list[tuple[str, int, str]]:
    """Every cell of the course in reading order: (notebook, index, source)."""
    return [(p.name, i, text(c)) for p in notebooks for i, c in enumerate(cells(p))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation out, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def undefined_before_use(notebooks=NOTEBOOKS) -> list[str]:
    """Words first mentioned in a cell before (or without) the cell that links their definition."""
    order = course(notebooks)
    problems = []
    for anchor, mention in TERMS.items():
        first = next((k for k, (_, _, s) in enumerate(order) if mention.search(s)), None)
        defined = next(
            (k for k, (_, _, s) in enumerate(order) if f"glossary.md#{anchor}" in s), None
        )
        if first is not None and (defined is None or defined > first):
            name, i, _ = order[first]
            problems.append(
                f"{anchor}: first used in {name} cell {i}, defined "
                + (
                    f"later ({order[defined][0]} cell {order[defined][1]})"
                    if defined
                    else "nowhere"
                )
            )
    return problems


def bare_asserts(path: Path) -> list[str]:
    """The `assert` statements of a notebook's code cells (IPython's % and ! lines left out)."""
    found = []
    for i, c in enumerate(cells(path)):
        if c["cell_type"] != "code":
            continue
        src = "\n".join(
            "" if line.lstrip().startswith(("%", "!")) else line for line in text(c).splitlines()
        )
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Assert):
                found.append(f"{path.name} cell {i} (id {c.get('id')}) line {node.lineno}")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_bare_assert_a_learner_could_trip_over(path):
    assert bare_asserts(path) == [], "write the check as llamalab.course.expect(...)"


def test_the_scan_finds_an_assert_inside_a_block(tmp_path):
    nb = tmp_path / "09_probe.ipynb"
    nb.write_text(
        '{"cells": [{"cell_type": "code", "id": "x", "source": ["%time 1\\n", "if True:\\n", '
        "\"    assert 1 < 2, 'fine'\"]}]}"
    )
    assert bare_asserts(nb) == ["09_probe.ipynb cell 0 (id x) line 3"]


def test_expect_prints_for_a_learner(monkeypatch, capsys):
    monkeypatch.delenv("LLAMALAB_SOLUTIONS", raising=False)
    expect(2 > 1, "two is more than one", "arithmetic broke")
    expect(1 > 2, "c8 beats c1", "other work took the cores.", timing=True)
    out = capsys.readouterr().out
    assert out.startswith("✓ two is more than one\n") and "arithmetic broke" not in out
    assert "✗ not so in this run: c8 beats c1\n  other work took the cores." in out
    assert "If you see ✗ here on a busy machine" in out


def test_expect_raises_with_the_same_words_under_the_switch(monkeypatch, capsys):
    monkeypatch.setenv("LLAMALAB_SOLUTIONS", "1")
    expect(True, "holds")
    assert capsys.readouterr().out == "✓ holds\n"
    with pytest.raises(CheckFailed) as e:
        expect(False, "the export agrees with its source", "read exported.check.")
    assert e.value.message == "✗ not so in this run: the export agrees with its source"
    assert e.value.fix == "read exported.check."


def test_the_glossary_defines_every_word_the_course_checks():
    headings = {slug(h) for h in re.findall(r"^### (.+)$", GLOSSARY.read_text(), re.M)}
    assert set(TERMS) <= headings, sorted(set(TERMS) - headings)
    assert set(TERMS) >= ASKED


def test_every_word_is_defined_where_it_first_appears():
    assert undefined_before_use() == [], (
        "add a one-line definition with its glossary link (glossary.md#ANCHOR) to the cell "
        "of first use, or to a cell before it"
    )


def test_the_order_check_sees_a_word_used_too_early(tmp_path):
    early = tmp_path / "00_a.ipynb"
    early.write_text('{"cells": [{"cell_type": "markdown", "source": ["The KV cache grows."]}]}')
    late = tmp_path / "01_b.ipynb"
    late.write_text(
        '{"cells": [{"cell_type": "markdown", "source": '
        '["*KV cache* ([glossary](glossary.md#kv-cache)): keys and values."]}]}'
    )
    assert undefined_before_use([early, late])[0].startswith(
        "kv-cache: first used in 00_a.ipynb cell 0, defined later (01_b.ipynb cell 0)"
    )
    assert not any(p.startswith("kv-cache") for p in undefined_before_use([late, early]))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_first_cell_states_learning_time_and_prerequisites(path):
    first = text(cells(path)[0])
    assert LEARNING_TIME.search(first), f"{path.name}: no '**Learning time** — about N min'"
    assert "**Prerequisites**" in first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_internals_live_in_docs_not_in_learner_text(path):
    found = [m.group() for c in cells(path) for m in INTERNALS.finditer(text(c))]
    assert found == [], f"{path.name}: move {found} to notebooks/internals.md, leave a pointer"


def test_every_local_link_resolves_beside_the_notebooks():
    """The course's links point at files inside notebooks/, so they also work in the wheel's copy
    and in `llamalab course --output DIR` (which copies only that folder)."""
    link = re.compile(r"\]\(([^)#:\s]+\.md)(?:#([a-z0-9-]+))?\)")
    broken = []
    for path in [*NOTEBOOKS, *(ROOT / "notebooks").glob("*.md")]:
        for target, anchor in link.findall(path.read_text()):
            file = (path.parent / target).resolve()
            if not file.is_file() or file.parent != path.parent.resolve():
                broken.append(f"{path.name}: {target}")
            elif anchor and f"#{anchor}" not in _anchors(file):
                broken.append(f"{path.name}: {target}#{anchor}")
    assert broken == []


def _anchors(md: Path) -> set[str]:
    """GitHub-style anchors of a markdown file's headings."""
    heads = re.findall(r"^#+\s+(.+)$", md.read_text(), re.M)
    return {"#" + re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in heads}
