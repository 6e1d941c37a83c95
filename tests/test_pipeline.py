"""The notebook runner: ordering, parameter passing, quick mode, failures named by notebook and cell."""

from __future__ import annotations

import json
import keyword
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from badinput import refuses
from eokit.cli import main
from eokit.paths import NOTEBOOK_DIR
from eokit.pipeline import (
    NotebookFailed,
    check_parameters,
    list_notebooks,
    parse_parameters,
    run_notebook,
    run_pipeline,
)


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
    _book(
        folder / "00_first.ipynb",
        "output = 'x'\nquick = False\nepochs = 5",
        [write + "pathlib.Path(output, 'first.json').write_text(json.dumps({'quick': quick, 'epochs': epochs}))"],
    )
    _book(
        folder / "01_second.ipynb",
        "output = 'x'\nname = 'a'",
        [write + "pathlib.Path(output, 'second.json').write_text(json.dumps({'name': name}))"],
    )
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


def test_yaml_values_are_typed(tmp_path: Path) -> None:
    p = parse_parameters(
        [
            ("a", "3"),
            ("b", "0.5"),
            ("c", "[x, y]"),
            ("d", "None"),
            ("e", "text"),
            ("f", "'None'"),
            ("g", "[None, null, ~]"),
            ("h", "True"),
            ("i", "{k: [1, 2.5]}"),
        ]
    )
    assert p == {
        "a": 3,
        "b": 0.5,
        "c": ["x", "y"],
        "d": None,
        "e": "text",
        "f": "None",
        "g": [None] * 3,
        "h": True,
        "i": {"k": [1, 2.5]},
    }
    yml = tmp_path / "p.yaml"
    yml.write_text("\ufeffd: None\nf: 'None'\ng: [None, null]\n")  # a BOM, as some editors write
    assert parse_parameters([], [yml]) == {"d": None, "f": "None", "g": [None, None]}


def test_later_files_and_pairs_take_precedence_sections_merge(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("epochs: 1\nname: a\n'00': {epochs: 2, quick: true}\n")
    b.write_text("name: b\n'00': {epochs: 3}\n")
    p = parse_parameters([("name", "c")], [a, b])
    assert p == {"epochs": 1, "name": "c", "00": {"epochs": 3, "quick": True}}
    assert parse_parameters([], [tmp_path / "a.yaml"]) == {"epochs": 1, "name": "a", "00": {"epochs": 2, "quick": True}}
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    assert parse_parameters([], [tmp_path / "empty.yaml"]) == {}


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
    assert (
        main(
            ["run", "--notebook-dir", str(books), "-o", str(tmp_path / "o"), "--no-progress", "-p", "epochs", "7", "00"]
        )
        == 0
    )
    assert "executed 1 notebook(s)" in capsys.readouterr().out
    _book(books / "01_second.ipynb", "output = 'x'", ["1/0"])
    assert main(["run", "--notebook-dir", str(books), "-o", str(tmp_path / "o2"), "--no-progress"]) == 1
    assert "01_second.ipynb failed at code cell 2" in capsys.readouterr().err


def test_python_m_eokit_lists(books: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "eokit", "list", "--notebook-dir", str(books)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "00_first.ipynb" in res.stdout and "epochs = 5" in res.stdout


def test_per_notebook_sections_override_shared_parameters(books: Path, tmp_path: Path) -> None:
    yml = tmp_path / "p.yaml"
    yml.write_text("epochs: 9\nname: shared\n'00':\n  epochs: 2\n01_second:\n  name: own\n")
    out = tmp_path / "out"
    run_pipeline(out, parse_parameters([], [yml]), folder=books, progress=False)
    assert json.loads((out / "first.json").read_text())["epochs"] == 2
    assert json.loads((out / "second.json").read_text()) == {"name": "own"}


# ------------------------------------------------------------------------------ parameters no notebook declares
def test_committed_parameter_files_and_readme_examples_pass_the_check() -> None:
    books = list_notebooks(NOTEBOOK_DIR)
    demo = parse_parameters([], [NOTEBOOK_DIR / "demo.yaml"])
    plan = check_parameters(demo, books)
    assert (
        plan[NOTEBOOK_DIR / "06_train_cnn.ipynb"]["epochs"] == 2
        and plan[NOTEBOOK_DIR / "05_evaluation.ipynb"]["n_seeds"] == 2
    )
    two = [b for b in books if b.stem.startswith("02")]
    assert check_parameters(demo, two, [b for b in books if b not in two]) == {two[0]: {"epochs": 25, "patience": 8}}
    check_parameters(parse_parameters([("epochs", "50"), ("model", "tempcnn")]), two)
    readme = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)  # the README's example file
    readme.write(
        'seed: 1\n"02":\n  epochs: 300\n  hparams: {units: [256, 256], use_doy: true}\n'
        '"06":\n  models: [cnn, vgg16_nopool]\n'
    )
    readme.close()
    check_parameters(parse_parameters([], [readme.name]), books)
    Path(readme.name).unlink()
    one = [b for b in books if b.stem.startswith("01")]
    check_parameters(
        parse_parameters([("cube", "x"), ("polygons", "y.gpkg"), ("label_column", "LULC_ID"), ("mapping", "None")]), one
    )


@pytest.mark.bad_input
def test_mistyped_parameter_is_refused_before_anything_runs(books: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with refuses(ValueError, "epcohs", "-p", "did you mean epochs", "00_first.ipynb"):
        run_pipeline(out, parse_parameters([("epcohs", "5")]), folder=books, progress=False)
    assert not out.exists()


def test_cli_refuses_mistyped_parameter_in_one_line(books: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "o"
    assert main(["run", "--notebook-dir", str(books), "-o", str(out), "--no-progress", "-p", "epcohs", "5"]) == 2
    err = capsys.readouterr().err
    assert "epcohs" in err and "did you mean epochs?" in err and "00_first.ipynb" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.bad_input
def test_mistyped_key_in_parameter_file_is_refused(books: Path, tmp_path: Path) -> None:
    yml = tmp_path / "mine.yaml"
    yml.write_text("epochs: 2\nnmae: x\n")
    with refuses(ValueError, "nmae", "mine.yaml", "did you mean name", "01_second.ipynb"):
        run_pipeline(tmp_path / "out", parse_parameters([], [yml]), folder=books, progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.bad_input
def test_mistyped_key_in_a_section_names_the_section_and_its_notebook(books: Path, tmp_path: Path) -> None:
    yml = tmp_path / "mine.yaml"
    yml.write_text("'00':\n  epcohs: 3\n")
    with refuses(ValueError, "epcohs", "section '00'", "00_first.ipynb", "did you mean epochs", "quick"):
        run_pipeline(tmp_path / "out", parse_parameters([], [yml]), folder=books, progress=False)


@pytest.mark.bad_input
@pytest.mark.parametrize("section, shown", [("'08'", "'08'"), ("2", "'2'"), ("02_first", "'02_first'"), ("'1'", "'1'")])
def test_section_naming_no_notebook_is_refused(books: Path, tmp_path: Path, section: str, shown: str) -> None:
    yml = tmp_path / "mine.yaml"
    yml.write_text(f"{section}:\n  epochs: 3\n")
    with refuses(ValueError, shown, "names no notebook", "'00' or '00_first'", "mine.yaml"):
        run_pipeline(tmp_path / "out", parse_parameters([], [yml]), select=["00"], folder=books, progress=False)


@pytest.mark.bad_input
def test_unquoted_two_digit_section_gets_a_quoting_hint(books: Path, tmp_path: Path) -> None:
    yml = tmp_path / "mine.yaml"
    yml.write_text("01:\n  name: x\n")  # YAML reads 01 as the number 1
    with refuses(ValueError, "section '1'", "quoted", "'01'"):
        run_pipeline(tmp_path / "out", parse_parameters([], [yml]), folder=books, progress=False)


@pytest.mark.bad_input
def test_parameter_of_a_notebook_not_selected_is_refused(books: Path, tmp_path: Path) -> None:
    with refuses(ValueError, "epochs", "declared only by 00_first.ipynb", "selected: 01_second.ipynb"):
        run_pipeline(tmp_path / "out", parse_parameters([("epochs", "3")]), select=["01"], folder=books, progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.bad_input
def test_run_notebook_alone_refuses_what_it_does_not_declare(books: Path, tmp_path: Path) -> None:
    with refuses(ValueError, "epochs", "declared only by 00_first.ipynb", "selected: 01_second.ipynb"):
        run_notebook(books / "01_second.ipynb", tmp_path / "out", {"epochs": 3}, progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.bad_input
def test_earlier_outputs_refused_before_the_first_notebook_runs(books: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "notebooks").mkdir(parents=True)
    (out / "notebooks" / "01_second.ipynb").write_text("{}")
    with refuses(FileExistsError, "01_second.ipynb", "overwrite"):
        run_pipeline(out, folder=books, progress=False)
    assert not (out / "first.json").exists()  # 00 did not run either


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "text, names",
    [
        ("epochs: [1, 2\n", ["line 2", "expected ',' or ']'", "mapping of name: value"]),
        ("- epochs\n- 3\n", ["expected a mapping of name: value", "list"]),
        ("epochs: 3\nname: a\nepochs: 4\n", ["duplicate key 'epochs'", "line 3", "first given on line 1"]),
        ("epochs: 3\n'00': {epochs: 1, epochs: 2}\n", ["duplicate key 'epochs'", "line 2"]),
        ("my-epochs: 3\n", ["'my-epochs'", "not a valid Python identifier"]),
        ("class: 3\n", ["'class'", "keyword"]),
        ("'00': 3\n", ["section '00'", "must be a mapping"]),
        ("'00': {bad name: 1}\n", ["section '00'", "'bad name'", "identifier"]),
        ("epochs: !!python/object:os.system x\n", ["line 1", "python/object"]),
        ("a: 1\n---\nb: 2\n", ["single document"]),
    ],
)
def test_malformed_parameter_file_names_file_and_place(tmp_path: Path, text: str, names: list[str]) -> None:
    yml = tmp_path / "mine.yaml"
    yml.write_text(text)
    with refuses(ValueError, "mine.yaml", *names):
        parse_parameters([], [yml])


@pytest.mark.bad_input
def test_parameter_file_not_utf8(tmp_path: Path) -> None:
    yml = tmp_path / "latin.yaml"
    yml.write_bytes("name: Mühlviertel\n".encode("latin-1"))
    with refuses(ValueError, "latin.yaml", "not UTF-8", "YAML mapping"):
        parse_parameters([], [yml])


@pytest.mark.bad_input
@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_parameter_file_missing_or_a_folder(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "params.yaml"
    if kind == "folder":
        target.mkdir()
    with refuses(FileNotFoundError, "params.yaml", "does not exist" if kind == "missing" else "not a file"):
        parse_parameters([], [target])


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "pairs, names",
    [
        ([("tiles", "[33UVP, 33UWP")], ["-p tiles", "not a valid YAML value", "quote it"]),
        ([("hparams", "{units: 3, units: 4}")], ["-p hparams", "duplicate key 'units'"]),
        ([("epochs", "3"), ("epochs", "4")], ["-p epochs", "given twice", "'3'", "'4'"]),
        ([("not-a-name", "1")], ["'not-a-name'", "not a valid Python identifier"]),
        ([("lambda", "1")], ["'lambda'", "keyword"]),
        ([("name", "  ")], ["-p name", "empty value", "None"]),
        ([("cube", "*nowhere")], ["-p cube", "not a valid YAML value", "alias"]),
    ],
)
def test_bad_pairs_name_the_parameter(pairs: list[tuple[str, str]], names: list[str]) -> None:
    with refuses(ValueError, *names):
        parse_parameters(pairs)


# ------------------------------------------------------------------------------------------ property tests
class _Dumper(yaml.SafeDumper):
    """Writes YAML as the runner reads it: the text 'None' is quoted (a bare None is null there)."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^None$"), ["N"])

_NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,7}", fullmatch=True).filter(lambda n: not keyword.iskeyword(n))
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_MAPPINGS = st.dictionaries(_NAMES, _VALUES, min_size=1, max_size=5)
_PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _dump(value: object) -> str:
    return yaml.dump(value, Dumper=_Dumper, default_flow_style=True, allow_unicode=False, width=float("inf"))


def _write_lines(folder: Path, params: dict, keys: list[str] | None = None) -> Path:
    """One `key: value` line per parameter (value in flow style), keys as given (possibly mutated)."""
    f = folder / "p.yaml"
    lines = [
        f"{k}: {_dump(v).removesuffix(chr(10) + '...' + chr(10)).strip()}"
        for k, v in zip(keys or list(params), params.values(), strict=True)
    ]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f


@_PROPERTY
@given(params=_MAPPINGS)
def test_file_and_pairs_give_the_same_values(params: dict) -> None:
    with tempfile.TemporaryDirectory() as d:
        whole = Path(d) / "whole.yaml"
        whole.write_text(yaml.dump(params, Dumper=_Dumper, allow_unicode=False), encoding="utf-8")
        assert parse_parameters([], [whole]) == params
        assert parse_parameters([], [_write_lines(Path(d), params)]) == params
    assert parse_parameters([(k, _dump(v)) for k, v in params.items()]) == params


def _declaring(folder: Path, names: list[str]) -> Path:
    book = folder / "00_declares.ipynb"
    _book(book, "\n".join(f"{n} = None" for n in names), [])
    return book


#: short names from few letters, so that one changed character often makes another key (epoch / epochs)
_CLOSE_NAMES = st.from_regex(r"[a-c][a-c_]{0,2}", fullmatch=True)


@_PROPERTY
@given(params=st.dictionaries(_CLOSE_NAMES, _VALUES, min_size=1, max_size=5), data=st.data())
def test_mutated_key_gives_the_same_values_or_a_clear_error(params: dict, data: st.DataObject) -> None:
    """A changed character in a key: the same parameters reach the notebook, or ValueError; never others.

    The notebook declares exactly the given keys (a typo that makes another declared name cannot be told apart).
    """
    keys = list(params)
    i = data.draw(st.integers(0, len(keys) - 1), label="key")
    pos = data.draw(st.integers(0, len(keys[i]) - 1), label="position")
    aligned = sorted({k[pos] for k in keys if len(k) > pos})  # the letter another key has there: a near-miss
    syntax = sorted(set(" :#'\"-_\t\n{[&*!?|>%@`,"))
    char = data.draw(
        st.sampled_from(aligned) | st.sampled_from(syntax) | st.characters(exclude_categories=("Cs",)),
        label="character",
    )
    mutated = keys[:i] + [keys[i][:pos] + char + keys[i][pos + 1 :]] + keys[i + 1 :]
    via_file = data.draw(st.booleans(), label="file")
    with tempfile.TemporaryDirectory() as d:
        book = _declaring(Path(d), keys)
        try:
            if via_file:
                parsed = parse_parameters([], [_write_lines(Path(d), params, mutated)])
            else:
                parsed = parse_parameters([(k, _dump(v)) for k, v in zip(mutated, params.values(), strict=True)])
            passed = check_parameters(parsed, [book])[book]
        except ValueError as exc:
            assert str(exc), "an empty error message"
            return
    assert passed == params, f"mutated {keys[i]!r} -> {mutated[i]!r} silently gave {passed!r}"


@pytest.mark.slow
def test_runner_kernels_are_quiet_and_each_bar_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """In the executed copy: no TensorFlow start-up lines, no TqdmWarning, a bar's 200 updates as one line; in the
    runner's terminal: no kernel log lines (IPKernelApp's TCP notice)."""
    monkeypatch.delenv("EOKIT_PROGRESS", raising=False)
    book = _book(
        tmp_path / "00_quiet.ipynb",
        "output = 'x'",
        [
            "import os\nimport eokit.train\nimport tensorflow as tf\nprint(os.environ['EOKIT_PROGRESS'])",
            "from eokit._progress import tqdm\nfor _ in tqdm(range(200), desc='blocks', mininterval=0):\n    pass",
        ],
    )
    result = run_notebook(book, tmp_path / "out", progress=False)
    cells = [c for c in nbformat.read(result.executed, as_version=4).cells if c.cell_type == "code"]
    outputs = [o for c in cells for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs)
    assert "oneDNN" not in text and "absl::InitializeLog" not in text and "TqdmWarning" not in text, text
    assert cells[-2].outputs[0].text == "text\n"  # the kernel got text bars
    (bar,) = cells[-1].outputs
    assert bar.output_type == "stream" and bar.text.count("\n") == 1 and "\r" not in bar.text
    assert bar.text.startswith("blocks: 100%") and "200/200" in bar.text
    assert "EOKIT_PROGRESS" not in os.environ  # set for the kernel only
    terminal = capfd.readouterr()
    assert "IPKernelApp" not in terminal.err + terminal.out, terminal.err[-2000:]
