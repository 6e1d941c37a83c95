"""The committed notebooks: structure checks, then the whole pipeline executed in quick mode."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from eokit.paths import NOTEBOOK_DIR
from eokit.pipeline import NotebookFailed, list_notebooks, run_notebook

BOOKS = list_notebooks(NOTEBOOK_DIR)
IDS = [b.stem for b in BOOKS]


def test_there_is_a_pipeline() -> None:
    assert BOOKS, f"no NN_topic.ipynb notebooks in {NOTEBOOK_DIR}"
    assert BOOKS[0].name == "00_datasets.ipynb"


@pytest.mark.parametrize("book", BOOKS, ids=IDS)
def test_structure(book: Path) -> None:
    """Markdown first, a `parameters` cell second, `output` and `quick` declared, no committed outputs."""
    nb = json.loads(book.read_text())
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown", f"{book.name}: first cell must be markdown"
    assert cells[1]["cell_type"] == "code" and "parameters" in cells[1]["metadata"].get("tags", []), (
        f"{book.name}: second cell must be the code cell tagged 'parameters'"
    )
    src = "".join(cells[1]["source"])
    for name in ("output", "quick"):
        assert f"{name} =" in src, f"{book.name}: parameters cell must declare `{name}`"
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, (
                f"{book.name}: cell {i} carries outputs; strip them before committing"
            )


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Run every notebook in order in quick mode; record each one's result or failure."""
    out = Path(os.environ.get("EOKIT_TEST_OUTPUT") or tmp_path_factory.mktemp("pipeline"))
    status: dict[str, object] = {}
    failed = None
    for book in BOOKS:
        if failed is not None:
            status[book.stem] = f"not run: {failed.notebook.name} failed before it"
            continue
        try:
            status[book.stem] = run_notebook(book, out, quick=True, progress=False, overwrite=True)
        except NotebookFailed as exc:
            failed = exc
            status[book.stem] = exc
    status["_output"] = out
    return status


@pytest.mark.notebooks
@pytest.mark.parametrize("book", BOOKS, ids=IDS)
def test_executes_in_quick_mode(pipeline: dict[str, object], book: Path) -> None:
    result = pipeline[book.stem]
    if isinstance(result, (NotebookFailed, str)):
        pytest.fail(str(result))
    assert result.executed.exists()
    executed = json.loads(result.executed.read_text())
    assert any(c.get("outputs") for c in executed["cells"] if c["cell_type"] == "code")
