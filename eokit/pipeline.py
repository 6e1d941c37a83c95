"""The ordered notebook pipeline: discover `NN_topic.ipynb` notebooks and execute them with papermill."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eokit._io import write_json_atomic
from eokit._progress import PROGRESS_ENV
from eokit._quiet import TF_ENV, set_env
from eokit.parameters import check_parameters, declared_parameters, parameters_for, parse_parameters
from eokit.paths import NOTEBOOK_DIR

__all__ = [
    "KERNEL_ENV",
    "RUNNER_PARAMETERS",
    "NotebookFailed",
    "RunResult",
    "check_parameters",
    "declared_parameters",
    "list_notebooks",
    "parameters_for",
    "parse_parameters",
    "run_notebook",
    "run_pipeline",
]

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


#: What the runner's kernels inherit (a variable already set keeps its value): quiet TensorFlow start-up and
#: text progress bars, since no frontend shows a widget (see eokit._quiet, eokit._progress).
KERNEL_ENV: dict[str, str] = {**TF_ENV, PROGRESS_ENV: "text"}


@contextmanager
def _kernel_env() -> Iterator[None]:
    """Yield with KERNEL_ENV's missing variables set in os.environ (a kernel started meanwhile inherits them)."""
    added = set_env(KERNEL_ENV)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


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
        with _kernel_env():
            pm.execute_notebook(
                str(notebook),
                str(partial),
                parameters=passed,
                cwd=str(notebook.parent),
                progress_bar=progress,
                kernel_name=kernel,
                execution_timeout=timeout,
                coalesce_streams=True,  # a text progress bar's updates become its one final line
                # the kernel's own log lines ("Kernel is running over TCP without encryption", a KeyboardInterrupt
                # at shutdown) go to the runner's terminal; errors in cells still reach the notebook and the runner
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
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
    from eokit._progress import tqdm

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
