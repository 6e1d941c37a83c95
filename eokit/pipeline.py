"""The ordered notebook pipeline: discover `NN_topic.ipynb` notebooks and execute them with papermill."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

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
    chosen = []
    for key in select:
        key = str(key).strip()
        hits = [p for p in books if p.stem == key or p.name == key
                or (key.isdigit() and int(_NAME.match(p.name).group(1)) == int(key))]
        if not hits:
            names = ", ".join(p.stem for p in books) or "none"
            raise ValueError(f"no pipeline notebook matches {key!r} in {folder}; available: {names}")
        chosen.extend(h for h in hits if h not in chosen)
    return sorted(chosen)


def declared_parameters(notebook: str | Path) -> dict[str, Any]:
    """Return the parameters a notebook declares in its `parameters` cell (name -> papermill's description)."""
    import papermill as pm

    return dict(pm.inspect_notebook(str(notebook)))


def parse_parameters(pairs: Iterable[tuple[str, str]] = (), files: Iterable[str | Path] = ()) -> dict[str, Any]:
    """Return parameters from YAML files then `name value` pairs (values parsed as YAML: 3, 0.5, [a, b], None)."""
    params: dict[str, Any] = {}
    for f in files:
        f = Path(f)
        try:
            loaded = yaml.safe_load(f.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"parameter file {f}: cannot read YAML ({exc})") from exc
        if loaded is None:
            continue
        if not isinstance(loaded, dict):
            raise ValueError(f"parameter file {f}: expected a mapping of name: value, got {type(loaded).__name__}")
        params.update(loaded)
    for name, value in pairs:
        if not name.isidentifier():
            raise ValueError(f"parameter name {name!r} is not a valid Python identifier")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        params[name] = None if parsed == "None" else parsed
    return params


def _is_section(key: str, value: Any) -> bool:
    """Return True for a per-notebook section (`02:` or `02_train_lstm:` holding a mapping)."""
    return isinstance(value, dict) and bool(re.match(r"^\d{2}(_|$)", str(key)))


def parameters_for(notebook: str | Path, parameters: dict[str, Any]) -> dict[str, Any]:
    """Return the parameters meant for one notebook: the shared ones, then its own section on top.

    A section is a mapping under the notebook's number or stem, e.g. ``{"epochs": 5, "06": {"epochs": 2}}``
    gives notebook 06 ``epochs=2`` and every other notebook that declares it ``epochs=5``.
    """
    stem = Path(notebook).stem
    merged = {k: v for k, v in parameters.items() if not _is_section(k, v)}
    for key in (stem[:2], stem):
        section = parameters.get(key)
        if _is_section(key, section):
            merged.update(section)
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


def run_notebook(notebook: str | Path, output: str | Path, parameters: dict[str, Any] | None = None,
                 quick: bool = False, progress: bool = True, timeout: int | None = None,
                 kernel: str | None = None, overwrite: bool = False) -> RunResult:
    """Return the result of executing one notebook with papermill, its executed copy under `output/notebooks`.

    Only parameters the notebook declares are passed; `output` and `quick` are set by the runner.
    On failure raises NotebookFailed naming the notebook and the cell; the executed copy is kept as
    ``NN_topic.failed.ipynb`` beside where the successful copy would be.
    """
    import papermill as pm

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # kernels inherit it: no TensorFlow start-up chatter
    notebook = Path(notebook).resolve()
    output = Path(output).resolve()
    declared = declared_parameters(notebook)
    wanted = parameters_for(notebook, parameters or {})
    wanted.setdefault("output", str(output))
    if quick:
        wanted["quick"] = True
    passed = {k: v for k, v in wanted.items() if k in declared}
    skipped = sorted(k for k in wanted if k not in declared and k not in RUNNER_PARAMETERS)

    book_dir = output / "notebooks"
    book_dir.mkdir(parents=True, exist_ok=True)
    final = book_dir / notebook.name
    partial = book_dir / (notebook.stem + ".partial.ipynb")
    failed = book_dir / (notebook.stem + ".failed.ipynb")
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} exists from an earlier run; pass overwrite=True (--overwrite) "
                              f"or choose another output folder")
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(notebook), str(partial), parameters=passed, cwd=str(notebook.parent),
            progress_bar=progress, kernel_name=kernel, execution_timeout=timeout,
        )
    except pm.PapermillExecutionError as exc:
        shutil.move(partial, failed)
        cell, err = _failed_cell(failed)
        raise NotebookFailed(notebook, cell, err or f"{exc.ename}: {exc.evalue}", failed) from None
    except Exception as exc:  # kernel died, timeout, bad notebook JSON
        if partial.exists():
            shutil.move(partial, failed)
        cell, err = _failed_cell(failed) if failed.exists() else (None, None)
        raise NotebookFailed(notebook, cell, err or f"{type(exc).__name__}: {exc}",
                             failed if failed.exists() else None) from exc
    partial.replace(final)
    return RunResult(notebook, final, passed, time.perf_counter() - start, skipped)


def run_pipeline(output: str | Path = "outputs", parameters: dict[str, Any] | None = None, quick: bool = False,
                 select: Iterable[str] | None = None, folder: str | Path = NOTEBOOK_DIR, progress: bool = True,
                 timeout: int | None = None, kernel: str | None = None,
                 overwrite: bool = False) -> list[RunResult]:
    """Return the results of executing the ordered notebooks in turn, stopping at the first failure."""
    from tqdm.auto import tqdm

    books = list_notebooks(folder, select)
    if not books:
        raise FileNotFoundError(f"no pipeline notebooks (NN_topic.ipynb) in {folder}")
    results = []
    bar = tqdm(books, desc="eokit pipeline", unit="notebook", disable=not progress)
    for book in bar:
        bar.set_postfix_str(book.name)
        results.append(run_notebook(book, output, parameters, quick=quick, progress=progress,
                                    timeout=timeout, kernel=kernel, overwrite=overwrite))
    bar.close()
    _write_summary(Path(output), results)
    return results


def _write_summary(output: Path, results: list[RunResult]) -> Path:
    """Return the path of `run.json`, a record of what the pipeline executed with which parameters."""
    record = {
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "notebooks": [
            {"notebook": r.notebook.name, "executed": str(r.executed), "seconds": round(r.seconds, 1),
             "parameters": r.parameters, "not_declared": r.skipped_parameters}
            for r in results
        ],
    }
    return write_json_atomic(record, output / "run.json", default=str)
