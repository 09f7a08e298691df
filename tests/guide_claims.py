"""docs/guide-claims.md read as data: its rows, the `expect(...)` self-checks of a notebook, and
which asserted rows the recorded checks of a course run do not prove (tests/test_guide_claims.py
checks the table without running anything; tests/test_notebooks.py checks the records after the
notebooks ran)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "guide-claims.md"
VERDICTS = ("reproduced", "corrected", "not checkable here", "not checked")
STATUSES = ("asserted", "shown", "prose", "judgement")
NOTHING = "—"  # no notebook, or no marker: a claim the course does not take up in a cell
ROW = re.compile(r"\| (\d+) \| (.+?) \| (.+?) \| (\S+) \| (.+?) \| (\S+) \| (`[^`]+`|—) \|")
FIELDS = ("n", "claim", "verdict", "status", "why", "notebook", "marker")


def rows(text: str | None = None) -> list[dict]:
    """The claim rows of every table: | # | the guide says | verdict | status | arithmetic |
    checked in | `marker` |. A line that starts like a row but does not parse is an error."""
    out = []
    for line in (DOC.read_text() if text is None else text).splitlines():
        m = ROW.fullmatch(line)
        if m:
            row = dict(zip(FIELDS, m.groups(), strict=True))
            row["marker"] = row["marker"].strip("`")
            out.append(row)
        elif re.match(r"\| \d+ \|", line):
            raise ValueError(f"a claim row the test cannot read: {line[:120]}")
    return out


def source(notebook: str) -> str:
    """A notebook's cells' source, joined."""
    cells = json.loads((ROOT / notebook).read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells)


def expect_texts(notebook: str) -> set[str]:
    """The `what` of every `expect(condition, what, ...)` call in a notebook's code cells, as a
    learner reads it printed, with "…" where an f-string formats a value at run time."""
    out = set()
    for cell in json.loads((ROOT / notebook).read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        code = "\n".join(
            line
            for line in "".join(cell["source"]).splitlines()
            if not line.lstrip().startswith(("%", "!"))
        )
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "expect":
                what = node.args[1] if len(node.args) > 1 else None
                what = next((k.value for k in node.keywords if k.arg == "what"), what)
                text = _template(what)
                if text is not None:
                    out.add(text)
    return out


def _template(node) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)
    return None  # a `what` held in a variable: no row can name it


def matches(marker: str, what: str) -> bool:
    """A recorded check's `what` is the marker, "…" standing for any formatted value."""
    pattern = ".+?".join(re.escape(part) for part in marker.split("…"))
    return re.fullmatch(pattern, what, re.S) is not None


def unproven(claims: list[dict], records: list[dict]) -> list[str]:
    """For each asserted row, what is wrong with its check in `records` (the JSON lines expect()
    wrote in this run): it did not run in the row's notebook, or it ran and did not hold."""
    problems = []
    for row in claims:
        if row["status"] != "asserted":
            continue
        name = Path(row["notebook"]).name
        ran = [r for r in records if r["notebook"] == name and matches(row["marker"], r["what"])]
        if not ran:
            problems.append(f"row {row['n']}: its check {row['marker']!r} did not run in {name}")
        elif not all(r["ok"] for r in ran):
            problems.append(f"row {row['n']}: its check {row['marker']!r} failed in {name}")
    return problems
