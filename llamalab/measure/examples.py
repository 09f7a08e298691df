"""A learner's evaluation data as checked examples: a prompt (text or chat messages) and what the
reply should be.

From a list of {"prompt", "expected"} dicts, a .jsonl or .csv file with those columns, a pandas
DataFrame, or a bundled dataset's name. A row with "messages" (a chat conversation, as the
fine-tuning data has) becomes prompt = the messages before the last reply, expected = the last
reply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InvalidSetting
from ..data import DATASETS, HERE

ROLES = ("system", "user", "assistant")
SHAPE = (
    'Give each row a "prompt" (text or chat messages) and an "expected" reply, e.g. '
    '[{"prompt": "Capital of France?", "expected": "Paris"}], or a "messages" conversation.'
)


@dataclass(frozen=True)
class Example:
    """One row to evaluate: the prompt, what the reply should be (None: the scorer needs none)."""

    prompt: str | list[dict]
    expected: object = None


@dataclass(frozen=True)
class Examples:
    """The checked rows and where they came from (a file name, a bundled name, "a list", ...)."""

    rows: list[Example]
    source: str


def examples(data, needs_expected: bool = True) -> Examples:
    """Checked examples from `data` (see the module's docstring); raise InvalidSetting naming the
    row or the columns when something is missing."""
    raw, source = _raw(data)
    if not raw:
        raise InvalidSetting(f"The evaluation data ({source}) has no rows.", SHAPE)
    return Examples([_example(r, i, needs_expected) for i, r in enumerate(raw)], source)


def _raw(data) -> tuple[list, str]:
    if isinstance(data, (str, Path)):
        if str(data) in DATASETS:
            return _jsonl(HERE / DATASETS[str(data)]), str(data)
        return _file(Path(data)), Path(data).name
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame
        _columns(list(data.columns), "the DataFrame")
        return data.to_dict("records"), "a DataFrame"
    if isinstance(data, (list, tuple)):
        return list(data), "a list"
    raise InvalidSetting(
        f"data of type {type(data).__name__} is not evaluation data.",
        f"{SHAPE} Or pass a .jsonl/.csv path, a pandas DataFrame, or a bundled dataset's name "
        f"({', '.join(DATASETS)}).",
    )


def _file(path: Path) -> list:
    if not path.is_file():
        raise InvalidSetting(
            f"{path} is not a file.",
            "Pass the path of a .jsonl or .csv file, or a bundled dataset "
            f"({', '.join(DATASETS)}).",
        )
    if path.suffix == ".jsonl":
        return _jsonl(path)
    if path.suffix == ".csv":
        import pandas as pd

        frame = pd.read_csv(path, keep_default_na=False, dtype=str)
        _columns(list(frame.columns), path.name)
        return frame.to_dict("records")
    raise InvalidSetting(
        f"{path.name} is neither .jsonl nor .csv.",
        "Save the data as JSON lines (one object per line) or as a CSV with prompt and expected "
        "columns.",
    )


def _jsonl(path: Path) -> list:
    return json_lines(path.read_text(), path.name)


def json_lines(text: str, where: str) -> list:
    """One JSON object per line of `text` (blank lines skipped); a line that is not JSON is named
    (`where`: the file, or "your rows") with the shape to write."""
    rows = []
    for i, line in enumerate(text.splitlines()):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as e:
                raise InvalidSetting(
                    f"Line {i + 1} of {where} is not JSON: {e}.",
                    'Each line is one JSON object, e.g. {"prompt": "...", "expected": "..."}.',
                ) from None
    return rows


def _columns(columns: list, where: str) -> None:
    if "prompt" not in columns and "messages" not in columns:
        raise InvalidSetting(
            f"{where} has no 'prompt' column (columns: {', '.join(map(str, columns)) or 'none'}).",
            SHAPE,
        )


def _example(row, i: int, needs_expected: bool) -> Example:
    if not isinstance(row, dict):
        raise InvalidSetting(f"Row {i} is a {type(row).__name__}, not a dict.", SHAPE)
    if "prompt" not in row and "messages" in row:
        msgs = _messages(row["messages"], i)
        if msgs[-1]["role"] != "assistant" or len(msgs) < 2:
            raise InvalidSetting(
                f"Row {i}'s conversation does not end with an assistant reply after a prompt.",
                "End each conversation with the reply you expect (role 'assistant').",
            )
        return Example(msgs[:-1], msgs[-1]["content"])
    if "prompt" not in row:
        raise InvalidSetting(f"Row {i} has no 'prompt' (keys: {', '.join(map(str, row))}).", SHAPE)
    prompt = row["prompt"]
    prompt = _messages(prompt, i) if not isinstance(prompt, str) else prompt
    if isinstance(prompt, str) and not prompt.strip():
        raise InvalidSetting(f"Row {i}'s prompt is empty.", "Write the question to ask.")
    expected = row.get("expected")
    if needs_expected and (expected is None or expected == ""):
        raise InvalidSetting(
            f"Row {i} has no 'expected' value.",
            "Add what the reply should be (the scorer compares against it), or pick a scorer "
            "that needs none (valid_json, house_format).",
        )
    return Example(prompt, expected)


def _messages(msgs, i: int) -> list[dict]:
    ok = isinstance(msgs, (list, tuple)) and msgs
    ok = ok and all(
        isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)
        for m in msgs
    )
    if not ok:
        raise InvalidSetting(
            f"Row {i}'s prompt is neither text nor chat messages: {str(msgs)[:80]}.",
            'Chat messages are [{"role": "user", "content": "..."}] (roles: system, user, '
            "assistant).",
        )
    return [{"role": m["role"], "content": m["content"]} for m in msgs]
