"""Training data: chat conversations from a list, JSONL, a DataFrame or a `datasets.Dataset`,
checked row by row, then tokenized with the model's chat template with the loss on the assistant's
tokens only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import InvalidSetting
from ..data import DATASETS, HERE

if TYPE_CHECKING:
    import pandas as pd

ROLES = ("system", "user", "assistant")
IGNORE = -100  # labels with this value add nothing to the loss (torch's cross-entropy default)
BUNDLED = DATASETS


@dataclass(frozen=True)
class Example:
    """One tokenized conversation: ids, labels (IGNORE outside the assistant's replies)
    and its row number."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    row: int

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def bundled(name: str = "house-format") -> Path:
    """The path of a dataset shipped with the kit ('house-format' or 'house-format-heldout')."""
    if name not in BUNDLED:
        raise InvalidSetting(f"No bundled dataset {name!r}.", f"Known: {', '.join(BUNDLED)}.")
    return HERE / BUNDLED[name]


def conversations(data) -> list[list[dict]]:
    """Every row of `data` as a checked list of {"role", "content"} messages.

    Accepts: a bundled name, a .jsonl path, a list of conversations (each a list of messages or a
    dict with "messages"), a DataFrame / `datasets.Dataset` with a "messages" column or
    "prompt"/"response" columns. A bad row raises InvalidSetting naming its row number (0-based, as
    in the file or frame)."""
    return [_messages(row, i) for i, row in enumerate(_rows(data))]


def _rows(data) -> list:
    if isinstance(data, (str, Path)):
        return _jsonl(bundled(data) if str(data) in BUNDLED else Path(data))
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # pandas DataFrame
        return data.to_dict("records")
    if hasattr(data, "column_names") and hasattr(data, "__getitem__"):  # datasets.Dataset
        return [data[i] for i in range(len(data))]
    if isinstance(data, (list, tuple)):
        if data and isinstance(data[0], dict) and "role" in data[0]:
            return [data]  # one conversation passed bare
        return list(data)
    raise InvalidSetting(
        f"data of type {type(data).__name__} is not training data.",
        "Pass chat conversations (a list of message lists), a .jsonl path, a pandas DataFrame or "
        "a datasets.Dataset.",
    )


def _jsonl(path: Path) -> list:
    if not path.is_file():
        raise InvalidSetting(
            f"{path} is not a file.",
            "Pass a .jsonl file with one conversation per line, or a "
            f"bundled dataset name ({', '.join(BUNDLED)}).",
        )
    rows = []
    for i, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as e:
            raise InvalidSetting(
                f"Row {len(rows)} (line {i + 1} of {path.name}) is not JSON: {e}.",
                'Each line is one JSON object such as {"messages": [...]}.',
            ) from None
    return rows


def _messages(row, i: int) -> list[dict]:
    """One row as messages: {"messages": [...]}, a bare list, or {"prompt", "response"}
    (+ optional "system")."""
    if isinstance(row, dict) and "messages" in row:
        msgs = row["messages"]
    elif isinstance(row, dict) and {"prompt", "response"} <= set(row):
        msgs = ([{"role": "system", "content": row["system"]}] if row.get("system") else []) + [
            {"role": "user", "content": row["prompt"]},
            {"role": "assistant", "content": row["response"]},
        ]
    elif isinstance(row, (list, tuple)):
        msgs = row
    else:
        cols = sorted(row) if isinstance(row, dict) else type(row).__name__
        raise InvalidSetting(
            f"Row {i} has no conversation (columns: {cols}).",
            "Give each row a 'messages' list, or 'prompt' and 'response' columns.",
        )
    msgs = list(msgs) if not isinstance(msgs, str) and hasattr(msgs, "__iter__") else msgs
    if not isinstance(msgs, list) or not msgs:
        raise InvalidSetting(
            f"Row {i} is empty.", "Each row needs at least a user and an assistant message."
        )
    for j, m in enumerate(msgs):
        _check_message(m, i, j)
    if not any(m["role"] == "assistant" for m in msgs):
        raise InvalidSetting(
            f"Row {i} has no assistant message: nothing to learn from.",
            "Add the reply the model should give as {'role': 'assistant', 'content': ...}.",
        )
    return [{"role": m["role"], "content": m["content"]} for m in msgs]


def _check_message(m, i: int, j: int) -> None:
    if not isinstance(m, dict) or "role" not in m or "content" not in m:
        raise InvalidSetting(
            f"Row {i}, message {j} is missing its role or content: {str(m)[:80]}.",
            'Each message is {"role": "user" | "assistant" | "system", "content": "..."}.',
        )
    if m["role"] not in ROLES:
        raise InvalidSetting(
            f"Row {i}, message {j} has role {m['role']!r}.", f"Use one of {', '.join(ROLES)}."
        )
    if not isinstance(m["content"], str) or not m["content"].strip():
        raise InvalidSetting(
            f"Row {i}, message {j} ({m['role']}) has empty content.",
            "Remove the row or give the message some text.",
        )


def tokenize(
    tokenizer, convs: list[list[dict]], max_length: int, first_row: int = 0
) -> list[Example]:
    """Chat template applied; labels are the assistant's tokens (their end-of-turn
    token included)."""
    return [
        _tokenize_one(tokenizer, msgs, max_length, first_row + i) for i, msgs in enumerate(convs)
    ]


def _tokenize_one(tok, msgs, max_length, row) -> Example:
    ids = _ids(tok, msgs, generation_prompt=False)
    labels = [IGNORE] * len(ids)
    for k, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        start = len(_ids(tok, msgs[:k], generation_prompt=True))
        end = len(_ids(tok, msgs[: k + 1], generation_prompt=False))
        labels[start:end] = ids[start:end]
    if len(ids) > max_length:
        raise InvalidSetting(
            f"Row {row} is {len(ids)} tokens after the chat template, longer than "
            f"max_length={max_length}.",
            "Shorten or drop the row, or raise max_length.",
        )
    if all(x == IGNORE for x in labels):
        raise InvalidSetting(
            f"Row {row}: the chat template left no assistant tokens to learn from.",
            "Check that the tokenizer's chat template renders assistant messages.",
        )
    return Example(tuple(ids), tuple(labels), row)


def _ids(tok, msgs, generation_prompt: bool) -> list[int]:
    if getattr(tok, "chat_template", None):
        text = tok.apply_chat_template(
            msgs, tokenize=False, add_generation_prompt=generation_prompt
        )
        return tok(text, add_special_tokens=False)["input_ids"]
    text = "".join(
        f"{m['content']}\n" for m in msgs
    )  # a base model without a template: plain turns
    return tok(text, add_special_tokens=False)["input_ids"]


def split(
    examples: list[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """(train, eval): a seeded shuffle, `fraction` of the rows held out
    (none when fraction is 0)."""
    import random

    order = list(examples)
    random.Random(seed).shuffle(order)
    n = round(len(order) * fraction) if fraction else 0
    if n and len(order) - n < 1:
        raise InvalidSetting(
            "Too few rows to hold some out for eval loss.", "Pass more rows, or eval_fraction=0."
        )
    return order[n:], order[:n]


def preview(data, n: int = 5) -> pd.DataFrame:
    """The first `n` conversations as a DataFrame (user / assistant text), for a quick look."""
    import pandas as pd

    rows = []
    for i, msgs in enumerate(conversations(data)[:n]):
        rows.append(
            {
                "row": i,
                **{r: " | ".join(m["content"] for m in msgs if m["role"] == r) for r in ROLES},
            }
        )
    return pd.DataFrame(rows)
