"""Command-line interface: `eokit run` executes the notebook pipeline, `eokit list` shows it, `eokit info` reports."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eokit.paths import NOTEBOOK_DIR


def _parser() -> argparse.ArgumentParser:
    """Return the argument parser of the `eokit` command."""
    ap = argparse.ArgumentParser(prog="eokit", description="eokit: EO archives to training sets and models")
    sub = ap.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute the ordered notebooks with papermill")
    run.add_argument("notebooks", nargs="*", help="only these notebooks (numbers like 02 or names); default all")
    run.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a parameter for every selected notebook that declares it (value parsed as YAML); "
        "one no selected notebook declares is refused before anything runs",
    )
    run.add_argument(
        "-f",
        "--parameters-file",
        action="append",
        default=[],
        metavar="YAML",
        help="a YAML file of parameters (applied before -p)",
    )
    run.add_argument("-o", "--output", default="outputs", help="folder for executed notebooks and results")
    run.add_argument("--quick", action="store_true", help="small epochs and samples (CI)")
    run.add_argument("--overwrite", action="store_true", help="replace outputs of an earlier run")
    run.add_argument("--notebook-dir", default=str(NOTEBOOK_DIR), help="where the NN_topic.ipynb notebooks are")
    run.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell")
    run.add_argument("--kernel", default=None, help="Jupyter kernel name (default: the notebook's)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")

    ls = sub.add_parser("list", help="list the pipeline notebooks and their parameters")
    ls.add_argument("--notebook-dir", default=str(NOTEBOOK_DIR))

    info = sub.add_parser("info", help="versions, GDAL drivers, TensorFlow devices, data cache: for a bug report")
    info.add_argument("--json", action="store_true", help="print the facts as JSON")
    info.add_argument("--no-tensorflow", action="store_true", help="skip TensorFlow (importing it takes seconds)")
    return ap


def _list(folder: str) -> int:
    """Print each notebook with its declared parameters and defaults; return the exit status."""
    from eokit.pipeline import declared_parameters, list_notebooks

    for book in list_notebooks(folder):
        print(book.name)
        for name, info in declared_parameters(book).items():
            print(f"    {name} = {info.get('default')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the `eokit` command line; return the process exit status."""
    args = _parser().parse_args(argv)
    if args.command == "info":
        from eokit.info import info, show_versions

        if args.json:
            print(json.dumps(info(tensorflow=not args.no_tensorflow), indent=2))
        else:
            show_versions(tensorflow=not args.no_tensorflow)
        return 0
    if args.command == "list":
        try:
            return _list(args.notebook_dir)
        except (FileNotFoundError, ValueError) as exc:
            print(f"eokit list: {exc}", file=sys.stderr)
            return 2

    from eokit.pipeline import NotebookFailed, parse_parameters, run_pipeline

    try:
        params = parse_parameters(args.parameter, args.parameters_file)
        results = run_pipeline(
            output=args.output,
            parameters=params,
            quick=args.quick,
            select=args.notebooks or None,
            folder=args.notebook_dir,
            progress=not args.no_progress,
            timeout=args.timeout,
            kernel=args.kernel,
            overwrite=args.overwrite,
        )
    except NotebookFailed as exc:
        print(f"\neokit run stopped: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"eokit run: {exc}", file=sys.stderr)
        return 2
    out = Path(args.output).resolve()
    print(f"\nexecuted {len(results)} notebook(s) in {sum(r.seconds for r in results):.0f} s")
    for r in results:
        print(f"  {r.notebook.name:40s} {r.seconds:7.1f} s")
    print(f"executed notebooks: {out / 'notebooks'}")
    print(f"figures:            {out / 'figures'}")
    print(f"metrics:            {out / 'metrics'}")
    print(f"models and maps:    {out / 'models'}, {out / 'maps'}")
    print(f"run record:         {out / 'run.json'}")
    return 0
