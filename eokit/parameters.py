"""Notebook parameters for `eokit run`: parse them (YAML files, `-p` pairs), check them, pick one notebook's."""

from __future__ import annotations

import difflib
import keyword
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from eokit._checks import did_you_mean


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
    return did_you_mean(name, candidates, quote=False)


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
