"""docs/guide-claims.md cannot rot or overstate. Here, without running a notebook: every row has a
verdict and a status, names a notebook that exists, and an `asserted` row's marker is the text of
an `expect(...)` self-check in that notebook (a `shown` or `prose` row's marker is text that is
really there). That each asserted check ran and held in the course's run is checked after the
notebooks ran: tests/test_notebooks.py, from the checks expect() recorded."""

import json

import pytest
from guide_claims import (
    DOC,
    NOTHING,
    ROOT,
    STATUSES,
    VERDICTS,
    expect_texts,
    matches,
    rows,
    source,
    unproven,
)

from llamalab.course import CheckFailed, expect
from llamalab.course.workbook import CHECKS_LOG_ENV


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
    assert {x["status"] for x in r} == set(STATUSES)


def test_the_preamble_counts_the_rows_by_status():
    r = rows()
    counts = ", ".join(f"{sum(x['status'] == s for x in r)} {s}" for s in STATUSES)
    own = sum(x["claim"].startswith("(the course's own") for x in r)
    assert f"{counts} ({len(r)} rows, {own} of them the course's own)" in DOC.read_text()


@pytest.mark.parametrize("row", rows(), ids=lambda r: f"{r['n']}-{r['claim'][:30]}")
def test_each_row_has_a_verdict_a_status_and_its_marker_is_in_its_notebook(row):
    assert row["verdict"].startswith(VERDICTS), row["verdict"]
    assert row["status"] in STATUSES, f"row {row['n']}: status {row['status']!r}"
    if row["notebook"] == NOTHING:
        assert row["status"] in ("prose", "judgement"), f"row {row['n']}: {row['status']} where?"
        return
    assert (ROOT / row["notebook"]).is_file(), f"row {row['n']}: no {row['notebook']}"
    if row["status"] == "asserted":
        assert row["marker"] in expect_texts(row["notebook"]), (
            f"row {row['n']}: no expect(..., {row['marker']!r}) in {row['notebook']}: "
            "update docs/guide-claims.md"
        )
    elif row["marker"] != NOTHING:
        assert row["marker"] in source(row["notebook"]), (
            f"row {row['n']}: {row['marker']!r} is no longer in {row['notebook']}: "
            "update docs/guide-claims.md"
        )


def test_expect_texts_reads_literals_and_f_strings(tmp_path, monkeypatch):
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["expect(x, 'not code')"]},
            {
                "cell_type": "code",
                "source": [
                    "%time y = 1\n",
                    "expect(y == 1, 'one is one', 'why')\n",
                    "for k in ('a', 'b'):\n",
                    "    expect(k, f'{k} holds ({1 + 1:.0f} %)')\n",
                    "expect(True, what=W)\n",
                ],
            },
        ]
    }
    (tmp_path / "n.ipynb").write_text(json.dumps(nb))
    monkeypatch.setattr("guide_claims.ROOT", tmp_path)
    assert expect_texts("n.ipynb") == {"one is one", "… holds (… %)"}
    assert matches("… holds (… %)", "gptq-4bit holds (2 %)")
    assert not matches("… holds (… %)", "gptq-4bit holds 2 %")


def test_unproven_names_a_check_that_failed_did_not_run_or_ran_elsewhere():
    """The probe: the records check can fail, in each of the ways it must."""
    table = rows(
        "\n".join(
            f"| {n} | claim {n} | reproduced | {status} | why | notebooks/0{nb}_x.ipynb | `{m}` |"
            for n, status, nb, m in (
                (1, "asserted", 1, "held"),
                (2, "asserted", 1, "failed"),
                (3, "asserted", 1, "never ran"),
                (4, "asserted", 2, "ran in 01 only"),
                (5, "asserted", 2, "… in a loop"),
                (6, "shown", 1, "not required"),
            )
        )
    )
    records = [
        {"notebook": "01_x.ipynb", "what": "held", "ok": True},
        {"notebook": "01_x.ipynb", "what": "failed", "ok": False},
        {"notebook": "01_x.ipynb", "what": "ran in 01 only", "ok": True},
        {"notebook": "02_x.ipynb", "what": "a in a loop", "ok": True},
        {"notebook": "02_x.ipynb", "what": "b in a loop", "ok": False},
    ]
    problems = unproven(table, records)
    assert [p.split(":")[0] for p in problems] == ["row 2", "row 3", "row 4", "row 5"]
    assert "failed" in problems[0] and "did not run" in problems[1]
    assert unproven(table[:1], records) == [] and unproven(table[5:], []) == []


def test_expect_records_each_check_only_where_the_log_is_set(tmp_path, monkeypatch):
    log = tmp_path / "checks.jsonl"
    monkeypatch.delenv(CHECKS_LOG_ENV, raising=False)
    monkeypatch.setenv("LLAMALAB_SOLUTIONS", "0")
    expect(True, "a learner's check")  # no log named: nothing written anywhere we could read
    assert not log.exists()
    monkeypatch.setenv(CHECKS_LOG_ENV, str(log))
    monkeypatch.setenv("JPY_SESSION_NAME", "sub/01_landscape.ipynb")
    expect(1 + 1 == 2, "two")
    expect(False, "a ✗ a learner sees")  # printed, recorded, not raised
    monkeypatch.setenv("LLAMALAB_SOLUTIONS", "1")
    with pytest.raises(CheckFailed):
        expect(False, "a ✗ under the course's tests")  # recorded before it raises
    got = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["notebook"], r["what"], r["ok"]) for r in got] == [
        ("01_landscape.ipynb", "two", True),
        ("01_landscape.ipynb", "a ✗ a learner sees", False),
        ("01_landscape.ipynb", "a ✗ under the course's tests", False),
    ]
