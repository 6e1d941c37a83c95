"""The notebook runner: ordering, parameter passing, quick mode, failures named by notebook and cell."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from eokit.cli import main
from eokit.pipeline import NotebookFailed, list_notebooks, parse_parameters, run_pipeline


def _book(path: Path, params: str, body: list[str]) -> Path:
    """Write a small notebook: markdown, a `parameters` cell, then `body` code cells."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("# test notebook"))
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(src) for src in body)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture()
def books(tmp_path: Path) -> Path:
    folder = tmp_path / "nbs"
    folder.mkdir()
    write = "import json, pathlib\npathlib.Path(output).mkdir(parents=True, exist_ok=True)\n"
    _book(folder / "00_first.ipynb", "output = 'x'\nquick = False\nepochs = 5",
          [write + "pathlib.Path(output, 'first.json').write_text(json.dumps({'quick': quick, 'epochs': epochs}))"])
    _book(folder / "01_second.ipynb", "output = 'x'\nname = 'a'",
          [write + "pathlib.Path(output, 'second.json').write_text(json.dumps({'name': name}))"])
    (folder / "notes.ipynb").write_text("{}")  # not NN_topic: ignored
    return folder


def test_list_orders_and_selects(books: Path) -> None:
    assert [p.name for p in list_notebooks(books)] == ["00_first.ipynb", "01_second.ipynb"]
    assert [p.name for p in list_notebooks(books, ["1"])] == ["01_second.ipynb"]
    with pytest.raises(ValueError, match="no pipeline notebook matches '07'"):
        list_notebooks(books, ["07"])


def test_parameters_reach_only_notebooks_that_declare_them(books: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    yml = tmp_path / "p.yaml"
    yml.write_text("epochs: 2\nname: from-file\n")
    params = parse_parameters([("name", "cli")], [yml])
    results = run_pipeline(out, params, quick=True, folder=books, progress=False)
    assert json.loads((out / "first.json").read_text()) == {"quick": True, "epochs": 2}
    assert json.loads((out / "second.json").read_text()) == {"name": "cli"}
    assert "epochs" not in results[1].parameters and results[1].skipped_parameters == ["epochs"]
    assert (out / "notebooks" / "00_first.ipynb").exists()
    record = json.loads((out / "run.json").read_text())
    assert [r["notebook"] for r in record["notebooks"]] == ["00_first.ipynb", "01_second.ipynb"]
    with pytest.raises(FileExistsError, match="overwrite"):
        run_pipeline(out, params, folder=books, progress=False)
    run_pipeline(out, params, folder=books, progress=False, overwrite=True)


def test_yaml_values_are_typed() -> None:
    p = parse_parameters([("a", "3"), ("b", "0.5"), ("c", "[x, y]"), ("d", "None"), ("e", "text")])
    assert p == {"a": 3, "b": 0.5, "c": ["x", "y"], "d": None, "e": "text"}
    with pytest.raises(ValueError, match="not a valid Python identifier"):
        parse_parameters([("not-a-name", "1")])


def test_stops_at_first_failure_naming_notebook_and_cell(books: Path, tmp_path: Path) -> None:
    _book(books / "00_first.ipynb", "output = 'x'", ["a = 1", "raise ValueError('bad band B13')"])
    with pytest.raises(NotebookFailed) as info:
        run_pipeline(tmp_path / "out", folder=books, progress=False)
    err = info.value
    assert err.notebook.name == "00_first.ipynb" and err.cell == 3
    assert "bad band B13" in str(err) and "code cell 3" in str(err) and "raise ValueError" in str(err)
    assert err.executed.name == "00_first.failed.ipynb" and err.executed.exists()
    assert not (tmp_path / "out" / "second.json").exists()  # stopped before 01


def test_cli_exit_status_and_message(books: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "--notebook-dir", str(books), "-o", str(tmp_path / "o"), "--no-progress",
                 "-p", "epochs", "7", "00"]) == 0
    assert "executed 1 notebook(s)" in capsys.readouterr().out
    _book(books / "01_second.ipynb", "output = 'x'", ["1/0"])
    assert main(["run", "--notebook-dir", str(books), "-o", str(tmp_path / "o2"), "--no-progress"]) == 1
    assert "01_second.ipynb failed at code cell 2" in capsys.readouterr().err


def test_python_m_eokit_lists(books: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "eokit", "list", "--notebook-dir", str(books)],
                         capture_output=True, text=True, check=True)
    assert "00_first.ipynb" in res.stdout and "epochs = 5" in res.stdout


def test_per_notebook_sections_override_shared_parameters(books: Path, tmp_path: Path) -> None:
    yml = tmp_path / "p.yaml"
    yml.write_text("epochs: 9\nname: shared\n'00':\n  epochs: 2\n01_second:\n  name: own\n")
    out = tmp_path / "out"
    run_pipeline(out, parse_parameters([], [yml]), folder=books, progress=False)
    assert json.loads((out / "first.json").read_text())["epochs"] == 2
    assert json.loads((out / "second.json").read_text()) == {"name": "own"}
