"""docs/guide-claims.md cannot rot: every row has a verdict, names a notebook that exists, and
quotes a marker (an assert or a sentence) that is really in that notebook's source."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "guide-claims.md"
VERDICTS = ("reproduced", "corrected", "not checkable here")


def rows() -> list[dict]:
    """The claim rows of every table: | # | the guide says | verdict | arithmetic | checked in |
    `marker` |."""
    out = []
    for line in DOC.read_text().splitlines():
        m = re.fullmatch(r"\| (\d+) \| (.+?) \| (.+?) \| (.+?) \| (\S+) \| `([^`]+)` \|", line)
        if m:
            out.append(
                dict(
                    zip(
                        ("n", "claim", "verdict", "why", "notebook", "marker"),
                        m.groups(),
                        strict=True,
                    )
                )
            )
        else:
            assert not re.match(r"\| \d+ \|", line), (
                f"a claim row the test cannot read: {line[:120]}"
            )
    return out


def source(notebook: str) -> str:
    return "\n".join(
        "".join(c["source"]) for c in json.loads((ROOT / notebook).read_text())["cells"]
    )


def test_the_table_covers_every_notebook_with_claims_and_is_numbered():
    r = rows()
    assert [int(x["n"]) for x in r] == list(range(1, len(r) + 1))
    assert {x["notebook"] for x in r} >= {
        f"notebooks/{n}.ipynb"
        for n in (
            "00_quickstart",
            "01_landscape",
            "02_quantization_tradeoffs",
            "03_lora",
            "04_deployment",
        )
    }


@pytest.mark.parametrize("row", rows(), ids=lambda r: f"{r['n']}-{r['claim'][:30]}")
def test_each_row_has_a_verdict_and_its_marker_is_in_its_notebook(row):
    assert row["verdict"].startswith(VERDICTS), row["verdict"]
    assert (ROOT / row["notebook"]).is_file(), f"row {row['n']}: no {row['notebook']}"
    assert row["marker"] in source(row["notebook"]), (
        f"row {row['n']}: {row['marker']!r} is no longer in {row['notebook']}: "
        "update docs/guide-claims.md"
    )
