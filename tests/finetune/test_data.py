"""Training data: every input shape, row-numbered errors, assistant-only labels,
the bundled set and its checker."""

import json

import pandas as pd
import pytest

from llamalab.core.errors import InvalidSetting
from llamalab.train import data as D
from llamalab.train.score import complies, score

GOOD = [
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "ANSWER: Paris\nTOPIC: geography"},
]


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    from llamalab.runtime.files import embedded

    return AutoTokenizer.from_pretrained(str(embedded.ensure_model(verbose=False)))


def test_every_input_shape_gives_the_same_conversations(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"messages": GOOD}) + "\n\n")
    frame = pd.DataFrame(
        [{"prompt": "Capital of France?", "response": "ANSWER: Paris\nTOPIC: geography"}]
    )
    assert D.conversations([GOOD]) == D.conversations(str(path)) == D.conversations(frame) == [GOOD]
    assert D.conversations(pd.DataFrame([{"messages": GOOD}])) == [GOOD]


def test_datasets_dataset_is_accepted():
    datasets = pytest.importorskip("datasets")
    assert D.conversations(datasets.Dataset.from_list([{"messages": GOOD}])) == [GOOD]


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"messages": [{"content": "no role"}]}, "Row 2, message 0 is missing its role"),
        ({"messages": []}, "Row 2 is empty"),
        (
            {"messages": [{"role": "user", "content": "  "}, GOOD[1]]},
            "Row 2, message 0 (user) has empty content",
        ),
        ({"messages": [{"role": "robot", "content": "x"}]}, "Row 2, message 0 has role 'robot'"),
        ({"messages": [GOOD[0]]}, "Row 2 has no assistant message"),
        (
            {"question": "x", "answer": "y"},
            "Row 2 has no conversation (columns: ['answer', 'question'])",
        ),
    ],
)
def test_a_bad_row_is_named(bad, words):
    with pytest.raises(InvalidSetting) as e:
        D.conversations([{"messages": GOOD}, {"messages": GOOD}, bad])
    assert words in str(e.value)


def test_bad_json_line_is_named(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"messages": GOOD}) + "\n{oops\n")
    with pytest.raises(InvalidSetting, match="Row 1 .line 2 of d.jsonl. is not JSON"):
        D.conversations(path)


def test_labels_are_the_assistant_tokens_only(tok):
    [ex] = D.tokenize(tok, [GOOD], max_length=128)
    trained = [i for i, lab in zip(ex.input_ids, ex.labels) if lab != D.IGNORE]
    assert tok.decode(trained) == "ANSWER: Paris\nTOPIC: geography<|im_end|>\n"
    assert ex.input_ids[-len(trained) :] == tuple(trained)


def test_too_long_row_is_named(tok):
    long = [GOOD[0], {"role": "assistant", "content": "word " * 300}]
    with pytest.raises(InvalidSetting, match="Row 1 is .* tokens .* longer than max_length=128"):
        D.tokenize(tok, [GOOD, long], max_length=128)


def test_bundled_dataset_is_what_its_generator_writes(tmp_path):
    from tests.finetune import make_dataset

    train, held = make_dataset.main(tmp_path)
    assert train.read_text() == D.bundled("house-format").read_text()
    assert held.read_text() == D.bundled("house-format-heldout").read_text()
    rows, heldout = D.conversations("house-format"), D.conversations("house-format-heldout")
    assert len(rows) >= 200 and len(heldout) >= 50
    assert not {r[0]["content"] for r in rows} & {r[0]["content"] for r in heldout}
    assert all(complies(r[-1]["content"]) for r in rows + heldout)


def test_checker():
    assert complies("ANSWER: Paris\nTOPIC: geography") and complies(
        "  ANSWER: 12\nTOPIC: arithmetic\n"
    )
    assert not complies("The capital of France is Paris.")
    assert not complies("ANSWER: Paris\nTOPIC: cooking") and not complies("ANSWER: Paris")
    s = score(
        ["ANSWER: Paris\nTOPIC: geography", "ANSWER: Lyon\nTOPIC: geography", "Paris"],
        ["ANSWER: Paris\nTOPIC: geography"] * 3,
    )
    assert (s.compliance, round(s.exact, 1), s.n) == (200 / 3, 33.3, 3)
