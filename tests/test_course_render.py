"""`llamalab course html`: notebooks executed offline in a scratch copy, written as HTML and as an
executed .ipynb with an index; the notebooks given stay as they were. One render of two small
notebook (three cells that work, then one that fails) is shared by the tests; no model is
loaded."""

from __future__ import annotations

import base64

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import llamalab
from llamalab.cli import main
from llamalab.course import notebooks_dir, render_course

CELLS = [
    new_markdown_cell("# A tiny lesson\nThe KV cache, drawn; then a cell that fails."),
    new_code_cell(  # streamed in pieces, as a generation prints its tokens
        "import os\n"
        'for part in ("offline:", os.environ.get("HF_HUB_OFFLINE"), str(6 * 7) + "\\n"):\n'
        '    print(part, end=" " if part[-1] != "\\n" else "", flush=True)'
    ),
    new_code_cell(
        'from llamalab.plots import kv_figure\nkv_figure(["llama-3.1-8b"], contexts=(4096, 8192))'
    ),
    new_code_cell('raise ValueError("the answer is not here")'),
    new_code_cell('print("never reached")'),
]


def _write(path, cells):
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """One kernel for the module: a notebook that runs three cells, then fails."""
    source = _write(tmp_path_factory.mktemp("src") / "lesson.ipynb", CELLS)
    stored = source.read_bytes()
    out = tmp_path_factory.mktemp("html")
    (done,) = render_course(out, [source])
    return done, out, source, stored


@pytest.mark.slow  # runs a notebook in a kernel
def test_executed_html_carries_the_outputs_and_the_source_stays_clean(rendered):
    lesson, out, source, stored = rendered
    assert lesson.executed and lesson.run_s > 0 and lesson.title == "A tiny lesson"
    assert source.read_bytes() == stored  # nothing written back into the notebook given
    nb = nbformat.read(lesson.ipynb, as_version=4)
    (printed,) = nb.cells[1].outputs  # one text, not a line per piece
    assert printed["text"] == "offline: 1 42\n"  # the kernel ran offline
    drawn = nb.cells[2].outputs[-1]["data"]["application/vnd.plotly.v1+json"]["data"][0]["y"]
    kv = [
        llamalab.estimate("llama-3.1-8b", context=n).breakdown["kv_cache"] / 1e9
        for n in (4096, 8192)
    ]
    assert list(np.frombuffer(base64.b64decode(drawn["bdata"]), drawn["dtype"])) == kv
    page = lesson.html.read_text()
    assert "offline: 1 42" in page and "Plotly.newPlot" in page  # plotly.js inline: no network
    assert lesson.html.parent == out


@pytest.mark.slow
def test_a_failing_notebook_is_written_up_to_its_error_and_listed(rendered):
    lesson, out, _, _ = rendered
    assert not lesson.ok and lesson.error == "cell 4: ValueError: the answer is not here"
    nb = nbformat.read(lesson.ipynb, as_version=4)
    assert nb.cells[3].outputs[0]["ename"] == "ValueError" and nb.cells[4].outputs == []
    index = (out / "index.html").read_text()
    assert '<a href="lesson.html">A tiny lesson</a>' in index and 'href="lesson.ipynb"' in index
    assert "stopped: cell 4: ValueError: the answer is not here" in index


def test_no_execute_converts_a_course_notebook_as_stored(tmp_path, capsys):
    stored = (notebooks_dir() / "01_landscape.ipynb").read_bytes()
    assert main(["course", "html", "--output", str(tmp_path), "--notebooks", "01_landscape",
                 "--no-execute"]) == 0  # fmt: skip
    assert "01_landscape: converted" in capsys.readouterr().out
    page = (tmp_path / "01_landscape.html").read_text()
    assert "The model landscape and your hardware" in page and "best_scheme" in page
    assert nbformat.read(tmp_path / "01_landscape.ipynb", as_version=4) == nbformat.reads(
        stored.decode(), as_version=4
    )
    assert "not run" in (tmp_path / "index.html").read_text()
    assert (notebooks_dir() / "01_landscape.ipynb").read_bytes() == stored


def test_unknown_notebooks_and_misplaced_options_say_what_to_do(tmp_path, capsys):
    with pytest.raises(llamalab.LlamalabError, match="00_quickstart"):
        render_course(tmp_path, ["99_nothing"])
    assert main(["course", "--output", str(tmp_path), "--no-execute"]) == 2
    assert "→ Run `llamalab course html" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written
