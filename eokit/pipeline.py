"""The ordered notebook pipeline: discover `NN_topic.ipynb` notebooks and execute them with papermill."""

from __future__ import annotations

import difflib
import json
import keyword
import os
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from eokit._io import write_json_atomic
from eokit.paths import NOTEBOOK_DIR

_NAME = re.compile(r"^(\d{2})_[A-Za-z0-9_\-]+\.ipynb$")

#: Parameters the runner sets itself on every notebook that declares them.
RUNNER_PARAMETERS = ("output", "quick")


class NotebookFailed(RuntimeError):
    """A pipeline notebook raised; carries the notebook, the cell and the executed copy."""

    def __init__(self, notebook: Path, cell: int | None, error: str, executed: Path | None):
        self.notebook, self.cell, self.error, self.executed = notebook, cell, error, executed
        where = f"code cell {cell}" if cell is not None else "an unknown cell"
        saved = f"; executed copy with the traceback: {executed}" if executed else ""
        super().__init__(f"notebook {notebook.name} failed at {where}: {error}{saved}")


@dataclass
class RunResult:
    """What one executed notebook produced."""

    notebook: Path
    executed: Path
    parameters: dict[str, Any]
    seconds: float
    #: shared parameters of the run that this notebook does not declare (another selected notebook does)
    skipped_parameters: list[str] = field(default_factory=list)


def list_notebooks(folder: str | Path = NOTEBOOK_DIR, select: Iterable[str] | None = None) -> list[Path]:
    """Return the pipeline notebooks `NN_topic.ipynb` of `folder` in run order, optionally only `select`.

    `select` holds numbers (``"02"``, ``"2"``) or names (``"02_train_lstm"``), matched against each notebook.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"notebook folder {folder} does not exist")
    books = sorted(p for p in folder.glob("*.ipynb") if _NAME.match(p.name))
    if select is None:
        return books
    number = {p: int(m.group(1)) for p in books if (m := _NAME.match(p.name)) is not None}
    chosen: list[Path] = []
    for key in select:
        key = str(key).strip()
        hits = [p for p in books if p.stem == key or p.name == key or (key.isdigit() and number[p] == int(key))]
        if not hits:
            names = ", ".join(p.stem for p in books) or "none"
            raise ValueError(f"no pipeline notebook matches {key!r} in {folder}; available: {names}")
        chosen.extend(h for h in hits if h not in chosen)
    return sorted(chosen)


def declared_parameters(notebook: str | Path) -> dict[str, Any]:
    """Return the parameters a notebook declares in its `parameters` cell (name -> papermill's description)."""
    import papermill as pm

    return dict(pm.inspect_notebook(str(notebook)))


# ------------------------------------------------------------------------------------------ parameter parsing
class _Loader(yaml.SafeLoader):
    """YAML loader for parameters: refuses duplicate keys and reads a bare ``None`` as null, as Python spells it."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base class names it
                    break
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key!r} (first given on line {first}); give each key once",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^None$"), ["N"])

#: A key that addresses a notebook: its number (``"02"``; YAML reads an unquoted ``02`` as the number 2) or stem.
_SECTION = re.compile(r"^\d+(_|$)")


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Return a one-line account of a YAML error: what is wrong and where (line, column from 1)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    what = " ".join(str(getattr(exc, "problem", None) or exc).split())
    context = getattr(exc, "context", None)
    return f"{where}{what}" + (f" ({' '.join(context.split())})" if context else "")


def _is_section_key(key: Any) -> bool:
    """Return True for a key naming a notebook section (`02`, `02_train_lstm`, or the number YAML made of `02`)."""
    if isinstance(key, bool):
        return False
    return isinstance(key, int) or (isinstance(key, str) and bool(_SECTION.match(key)))


def _check_name(name: Any, where: str) -> None:
    """Raise ValueError unless `name` can be a notebook parameter (a Python identifier, not a keyword)."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        why = " (it is a Python keyword)" if isinstance(name, str) and keyword.iskeyword(name) else ""
        raise ValueError(
            f"{where}: parameter name {name!r} is not a valid Python identifier{why} (expected a name "
            f"such as epochs, or a notebook section such as '02')"
        )


class _Sourced(dict):
    """A parameters dict that remembers where each came from: ``origin[name]`` / ``origin[(section, name)]``."""

    def __init__(self) -> None:
        super().__init__()
        self.origin: dict[Any, str] = {}


def _read_parameter_file(f: Path) -> dict[Any, Any]:
    """Return the mapping of one YAML parameter file, its keys checked; ValueError naming the file otherwise."""
    if not f.is_file():
        raise FileNotFoundError(
            f"parameter file {f} does not exist" if not f.exists() else f"parameter file {f} is not a file"
        )
    try:
        loaded = yaml.load(f.read_text(encoding="utf-8-sig"), Loader=_Loader)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"parameter file {f}: not UTF-8 text ({exc.reason} at byte {exc.start}); expected a "
            f"YAML mapping of name: value"
        ) from None
    except yaml.YAMLError as exc:
        raise ValueError(
            f"parameter file {f}: not valid YAML at {_yaml_problem(exc)}; expected a mapping of name: value"
        ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(f"parameter file {f}: expected a mapping of name: value, got {type(loaded).__name__}")
    for key, value in loaded.items():
        if not _is_section_key(key):
            _check_name(key, f"parameter file {f}")
            continue
        if value is not None and not isinstance(value, dict):
            raise ValueError(
                f"parameter file {f}: section {str(key)!r} must be a mapping of name: value (the "
                f"parameters of notebook {str(key)}), got {type(value).__name__} {value!r}"
            )
        for name in value or {}:
            _check_name(name, f"parameter file {f}, section {str(key)!r}")
    return loaded


def _parse_value(name: str, text: str) -> Any:
    """Return a `-p name value` value parsed as YAML; ValueError naming the parameter when it is not YAML."""
    if not text.strip():
        raise ValueError(f"-p {name}: empty value; write None for no value or \"''\" for empty text")
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ValueError(
            f"-p {name} {text!r}: not a valid YAML value ({_yaml_problem(exc)}); expected a number, "
            "a list [a, b], a mapping {k: v}, None, or text (quote it: \"'...'\")"
        ) from None


def parse_parameters(pairs: Iterable[tuple[str, str]] = (), files: Iterable[str | Path] = ()) -> dict[str, Any]:
    """Return parameters from YAML files then `name value` pairs (values parsed as YAML: 3, 0.5, [a, b], None).

    A later file replaces an earlier file's values, and its sections (``"02": {epochs: 3}``) add to theirs; ``-p``
    pairs replace both. ``None`` (as Python writes it) is null like YAML's ``null``/``~``; quote it for the text.
    Raises ValueError naming the file (line, column) or the ``-p`` parameter for YAML that is malformed, not a
    mapping, has a duplicate key or a key that is no parameter name, and for a ``-p`` name given twice.
    """
    params = _Sourced()
    for f in files:
        f = Path(f)
        for key, value in _read_parameter_file(f).items():
            if _is_section_key(key):
                section = params.setdefault(str(key), {})
                section.update(value or {})
                params.origin[str(key)] = str(f)
                params.origin.update({(str(key), name): str(f) for name in value or {}})
            else:
                params[key] = value
                params.origin[key] = str(f)
    given: dict[str, str] = {}
    for name, value in pairs:
        _check_name(name, f"-p {name}")
        if name in given:
            raise ValueError(f"-p {name}: given twice ({given[name]!r} and {value!r}); give each parameter once")
        given[name] = value
        params[name] = _parse_value(name, value)
        params.origin[name] = f"-p {name}"
    return params


# ------------------------------------------------------------------------------------------ parameter checking
def _section_books(key: str, books: Iterable[Path]) -> list[Path]:
    """Return the notebooks a section key addresses (by number `02` or by stem `02_train_lstm`)."""
    return [b for b in books if key in (b.stem[:2], b.stem)]


def _names(books: Iterable[Path]) -> str:
    return ", ".join(b.name for b in books) or "none"


def _section_problems(
    key: str, value: Any, books: list[Path], pool: list[Path], declared: Any, origin: dict[Any, str]
) -> list[str]:
    """Return what is wrong with one per-notebook section: its name, its type, its parameter names."""
    where = f" (from {origin[key]})" if key in origin else ""
    if value is not None and not isinstance(value, dict):
        return [f"section {key!r}{where}: expected a mapping of parameter: value, got {type(value).__name__}"]
    targets = _section_books(key, pool)
    if not targets:
        hint = (
            " (name a section by the notebook's two-digit number, quoted in YAML: '02'; an unquoted 02 "
            "reads as the number 2)"
            if key.isdigit() and len(key) != 2
            else ""
        )
        selected = ", ".join(f"{b.stem[:2]!r} or {b.stem!r}" for b in books)
        rest = ", ".join(repr(b.stem[:2]) for b in pool if b not in books)
        return [
            f"section {key!r}{where} names no notebook{hint}; sections of the selected notebooks: {selected}"
            + (f" (of the others: {rest})" if rest else "")
        ]
    problems = []
    for book in targets:
        own = declared(book)
        for name in value or {}:
            if name not in own:
                src = origin.get((key, name))
                problems.append(
                    f"parameter {name!r} in section {key!r}"
                    + (f" (from {src})" if src else "")
                    + f": notebook {book.name} does not declare it{_did_you_mean(name, own)}; "
                    f"its parameters: {', '.join(own) or 'none'}"
                )
    return problems


def _did_you_mean(name: Any, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(name), list(candidates), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _shared_problem(key: Any, books: list[Path], pool: list[Path], declared: Any, origin: dict[Any, str]) -> str:
    """Return what is wrong with a parameter meant for every notebook that declares it ("" when one does)."""
    if any(key in declared(b) for b in books):
        return ""
    where = f" (from {origin[key]})" if key in origin else ""
    owners = [b for b in pool if key in declared(b)]
    if owners:
        return (
            f"parameter {key!r}{where} is declared only by {_names(owners)}, which this run does not select "
            f"(selected: {_names(books)}); select that notebook or leave the parameter out"
        )
    known = list(dict.fromkeys(n for b in pool for n in declared(b)))
    close = difflib.get_close_matches(str(key), known, n=1)
    if close:
        return (
            f"unknown parameter {key!r}{where}: no notebook declares it; did you mean {close[0]}? (declared "
            f"by {_names(b for b in pool if close[0] in declared(b))})"
        )
    return (
        f"unknown parameter {key!r}{where}: no notebook declares it; the selected notebooks declare "
        f"{', '.join(dict.fromkeys(n for b in books for n in declared(b))) or 'nothing'}"
    )


def check_parameters(
    parameters: dict[Any, Any], notebooks: Iterable[str | Path], others: Iterable[str | Path] = ()
) -> dict[Path, dict[str, Any]]:
    """Return, per notebook, the parameters it declares and gets; ValueError for any that would reach none.

    Every shared parameter must be declared by at least one of `notebooks`; every section must name a notebook
    of `notebooks` or `others` (the notebooks of the folder this run does not select: a section for one of them
    is checked against its parameters, then not used) and hold only parameters that notebook declares. The
    error names the parameter, where it came from, the closest declared name and the notebooks declaring it.
    """
    books = [Path(b) for b in notebooks]
    pool = books + [p for p in (Path(b) for b in others) if p not in books]
    cache: dict[Path, dict[str, Any]] = {}

    def declared(book: Path) -> dict[str, Any]:
        if book not in cache:
            cache[book] = declared_parameters(book)
        return cache[book]

    origin = getattr(parameters, "origin", {})
    problems: list[str] = []
    for key, value in parameters.items():
        if _is_section_key(key):
            problems += _section_problems(str(key), value, books, pool, declared, origin)
        else:
            problems.append(_shared_problem(key, books, pool, declared, origin))
    problems = [p for p in problems if p]
    if problems:
        raise ValueError("; ".join(problems))
    return {b: {k: v for k, v in parameters_for(b, parameters).items() if k in declared(b)} for b in books}


def parameters_for(notebook: str | Path, parameters: dict[str, Any]) -> dict[str, Any]:
    """Return the parameters meant for one notebook: the shared ones, then its own section on top.

    A section is a mapping under the notebook's number or stem, e.g. ``{"epochs": 5, "06": {"epochs": 2}}``
    gives notebook 06 ``epochs=2`` and every other notebook that declares it ``epochs=5``.
    """
    stem = Path(notebook).stem
    merged = {k: v for k, v in parameters.items() if not _is_section_key(k)}
    for key in (stem[:2], stem):
        section = parameters.get(key)
        if section is not None and not isinstance(section, dict):
            raise ValueError(f"section {key!r}: expected a mapping of parameter: value, got {type(section).__name__}")
        merged.update(section or {})
    return merged


def _failed_cell(executed: Path) -> tuple[int | None, str | None]:
    """Return (code-cell number in the source notebook, from 1, and its first line; error) of the failing cell.

    The cell papermill injects after the `parameters` cell is not counted, so the number matches the
    notebook as the user sees it in JupyterLab.
    """
    try:
        nb = json.loads(executed.read_text())
    except (OSError, ValueError):
        return None, None
    code_index = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code" or "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            continue
        code_index += 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                src = "".join(cell.get("source", "")).strip().splitlines()
                first = f" ({src[0][:60]!r})" if src else ""
                return code_index, f"{out.get('ename')}: {out.get('evalue')}{first}"
    return None, None


def _final(output: Path, notebook: Path) -> Path:
    """Return where the executed copy of `notebook` goes under `output`."""
    return output / "notebooks" / notebook.name


def _refuse_existing(output: Path, notebooks: Iterable[Path], overwrite: bool) -> None:
    """Raise FileExistsError naming the executed copies of an earlier run, unless `overwrite`."""
    existing = [str(_final(output, b)) for b in notebooks if _final(output, b).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{', '.join(existing)} exist(s) from an earlier run; pass overwrite=True "
            f"(--overwrite) or choose another output folder"
        )


def run_notebook(
    notebook: str | Path,
    output: str | Path,
    parameters: dict[str, Any] | None = None,
    quick: bool = False,
    progress: bool = True,
    timeout: int | None = None,
    kernel: str | None = None,
    overwrite: bool = False,
) -> RunResult:
    """Return the result of executing one notebook with papermill, its executed copy under `output/notebooks`.

    Every parameter (and section) must be one the notebook declares (ValueError otherwise, before anything
    runs); `output` and `quick` are set by the runner. On failure raises NotebookFailed naming the notebook and
    the cell; the executed copy is kept as ``NN_topic.failed.ipynb`` beside where the successful copy would be.
    """
    notebook = Path(notebook).resolve()
    others = [b.resolve() for b in list_notebooks(notebook.parent)] if _NAME.match(notebook.name) else []
    passed = check_parameters(parameters or {}, [notebook], others)[notebook]
    return _execute(
        notebook,
        Path(output).resolve(),
        passed,
        [],
        quick=quick,
        progress=progress,
        timeout=timeout,
        kernel=kernel,
        overwrite=overwrite,
    )


def _execute(
    notebook: Path,
    output: Path,
    passed: dict[str, Any],
    skipped: list[str],
    quick: bool,
    progress: bool,
    timeout: int | None,
    kernel: str | None,
    overwrite: bool,
) -> RunResult:
    """Return the result of executing `notebook` with its checked parameters (the runner's own added)."""
    import papermill as pm

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # kernels inherit it: no TensorFlow start-up chatter
    declared = declared_parameters(notebook)
    passed = dict(passed)
    if "output" in declared:
        passed.setdefault("output", str(output))
    if quick and "quick" in declared:
        passed["quick"] = True
    _refuse_existing(output, [notebook], overwrite)
    book_dir = output / "notebooks"
    book_dir.mkdir(parents=True, exist_ok=True)
    final = _final(output, notebook)
    partial = book_dir / (notebook.stem + ".partial.ipynb")
    failed = book_dir / (notebook.stem + ".failed.ipynb")
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(notebook),
            str(partial),
            parameters=passed,
            cwd=str(notebook.parent),
            progress_bar=progress,
            kernel_name=kernel,
            execution_timeout=timeout,
        )
    except pm.PapermillExecutionError as exc:
        shutil.move(partial, failed)
        cell, err = _failed_cell(failed)
        raise NotebookFailed(notebook, cell, err or f"{exc.ename}: {exc.evalue}", failed) from None
    except Exception as exc:  # kernel died, timeout, bad notebook JSON
        if partial.exists():
            shutil.move(partial, failed)
        cell, err = _failed_cell(failed) if failed.exists() else (None, None)
        raise NotebookFailed(
            notebook, cell, err or f"{type(exc).__name__}: {exc}", failed if failed.exists() else None
        ) from exc
    partial.replace(final)
    return RunResult(notebook, final, passed, time.perf_counter() - start, skipped)


def run_pipeline(
    output: str | Path = "outputs",
    parameters: dict[str, Any] | None = None,
    quick: bool = False,
    select: Iterable[str] | None = None,
    folder: str | Path = NOTEBOOK_DIR,
    progress: bool = True,
    timeout: int | None = None,
    kernel: str | None = None,
    overwrite: bool = False,
) -> list[RunResult]:
    """Return the results of executing the ordered notebooks in turn, stopping at the first failure.

    Before any notebook runs or any folder is made, every parameter is checked (:func:`check_parameters`:
    ValueError for one no selected notebook declares) and earlier executed copies are refused unless `overwrite`.
    """
    from tqdm.auto import tqdm

    books = [b.resolve() for b in list_notebooks(folder, select)]
    if not books:
        raise FileNotFoundError(f"no pipeline notebooks (NN_topic.ipynb) in {folder}")
    params = parameters or {}
    others = [b.resolve() for b in list_notebooks(folder) if b.resolve() not in books]
    plan = check_parameters(params, books, others)
    output = Path(output).resolve()
    _refuse_existing(output, books, overwrite)
    results = []
    bar = tqdm(books, desc="eokit pipeline", unit="notebook", disable=not progress)
    for book in bar:
        bar.set_postfix_str(book.name)
        skipped = sorted(str(k) for k in parameters_for(book, params) if k not in plan[book])
        results.append(
            _execute(
                book,
                output,
                plan[book],
                skipped,
                quick=quick,
                progress=progress,
                timeout=timeout,
                kernel=kernel,
                overwrite=overwrite,
            )
        )
    bar.close()
    _write_summary(output, results)
    return results


def _write_summary(output: Path, results: list[RunResult]) -> Path:
    """Return the path of `run.json`, a record of what the pipeline executed with which parameters."""
    record = {
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "notebooks": [
            {
                "notebook": r.notebook.name,
                "executed": str(r.executed),
                "seconds": round(r.seconds, 1),
                "parameters": r.parameters,
                "not_declared": r.skipped_parameters,
            }
            for r in results
        ],
    }
    return write_json_atomic(record, output / "run.json", default=str)
