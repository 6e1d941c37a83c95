"""The layers of docs/ARCHITECTURE.md, checked on the source: every import under eokit/ parsed with `ast`.

An import inside a function counts like one at the top of the file (a lazy import is still a dependency);
only imports under `if TYPE_CHECKING:` are left out (they never run). `importlib.import_module("eokit.x")`
with a literal name counts too; names built at run time (the model registry, catalog `opener:` strings) are
invisible here. Rules: (a) modules outside TF_MODULES never reach TensorFlow/Keras, not even through another
eokit module or inside a function (TF_LAZY modules: only inside functions); (b) sampling and patches never
reach models or train; (c) only the command line imports the runner; (d) no import cycles at module level;
and no import points up the LAYERS. `python tests/test_architecture.py` prints the actual edges per layer.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "eokit"
DOC = ROOT / "docs" / "ARCHITECTURE.md"

#: Bottom to top: a module may import its own layer and the ones below, never one above. A name covers
#: the module and, for a package, everything under it (`eokit.train` covers `eokit/train/*.py`).
LAYERS: dict[str, tuple[str, ...]] = {
    "core": (
        "eokit",
        "eokit.schema",
        "eokit.paths",
        "eokit.registry",
        "eokit._io",
        "eokit._checks",
        "eokit._dask",
        "eokit._block_tasks",
        "eokit._quiet",
        "eokit._progress",
        "eokit.plots",
        "eokit.palettes",
        "eokit._png_layout",
        "eokit.info",
    ),
    "readers": (
        "eokit.rasterfiles",
        "eokit.sentinel2",
        "eokit.tifstack",
        "eokit.cube",
        "eokit.snap",
        "eokit.sarbands",
        "eokit.sarstats",
        "eokit.sar",
        "eokit.sigrid",
        "eokit.labels",
        "eokit._label_read",
        "eokit.datasets",
        "eokit.catalog",
        "eokit.download",
        "eokit.synthetic",
        "eokit._synth_crops",
        "eokit._synth_lucas",
        "eokit._synth_s2",
        "eokit._synth_sar",
    ),
    "data prep": (
        "eokit.sampling",
        "eokit._sample_keys",
        "eokit._sample_writers",
        "eokit._sample_alloc",
        "eokit._sample_balance",
        "eokit.patches",
        "eokit._patch_checks",
        "eokit._patch_grid",
        "eokit._patch_plots",
        "eokit.splits",
        "eokit._split_groups",
        "eokit.timeseries",
        "eokit.trainingdata",
        "eokit.topics",
        "eokit._topic_cells",
        "eokit._topic_dlr",
        "eokit._topic_plots",
    ),
    "models": (
        "eokit.models",
        "eokit.augment",
        "eokit._augmenter",
        "eokit._augment_layer",
        "eokit._augment_plots",
        "eokit.inputs",
        "eokit.card",
    ),
    "training": ("eokit.train",),
    "maps/evaluate": (
        "eokit.maps",
        "eokit.evaluate",
        "eokit._eval_stats",
        "eokit._eval_lucas",
        "eokit.active",
        "eokit._active_select",
        "eokit._active_panel",
        "eokit.cleaning",
        "eokit._cleaning_cl",
        "eokit._cleaning_plots",
    ),
    "runner": ("eokit.pipeline", "eokit.parameters", "eokit.cli", "eokit.__main__"),
}

#: The modules that really need TensorFlow/Keras (anywhere, module level included), and why.
TF_MODULES: dict[str, str] = {
    "eokit.models": "builds the Keras models",
    "eokit.augment": "Keras augmentation layers and a tf.data map function",
    "eokit._augmenter": "the TensorFlow ops of the augmenter (eokit.augment.make_augmenter), a tf.data map function",
    "eokit._augment_layer": "the SARAugmentation Keras layer (eokit.augment.augmentation_layers)",
    "eokit.train": "tf.data input pipeline, the training loop, distribution strategies",
    "eokit.maps": "runs a trained Keras model over a cube or a patch set",
}
#: Modules that may reach TensorFlow only inside functions: importing them loads no TensorFlow.
TF_LAZY: dict[str, str] = {
    "eokit.card": "reading and checking a model card is plain JSON; only load_model deserialises Keras",
    "eokit.evaluate": "metrics and plots need no TensorFlow; only scoring a saved model loads it",
    "eokit._eval_lucas": "LUCAS scoring predicts with the model it is given (card's inputs); it never loads one",
    "eokit.cleaning": "label cleaning reuses evaluate's baseline features (through evaluate); it never loads a model",
}
TF_ROOTS = ("tensorflow", "keras", "tf_keras", "tensorboard")

#: (b) these data-prep modules never reach these (they make training sets, they do not train).
NO_TRAINING_CODE = {"eokit.sampling": ("eokit.models", "eokit.train"), "eokit.patches": ("eokit.models", "eokit.train")}
#: (c) the runner (`eokit run`) is imported by the command line only.
RUNNER = ("eokit.pipeline", "eokit.parameters", "eokit.cli")
RUNNER_IMPORTERS = ("eokit.cli", "eokit.__main__", "eokit.pipeline")


@dataclass(frozen=True)
class Edge:
    """One import statement's target, as seen in the importing module."""

    source: str
    target: str  # an eokit module, or an external dotted name
    line: int
    module_level: bool
    function: str | None

    def where(self) -> str:
        """Return 'eokit/x.py:12 (in f)' for messages."""
        path = _paths()[self.source].relative_to(ROOT)
        return f"{path}:{self.line}" + (f" (in {self.function})" if self.function else "")


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@lru_cache(maxsize=1)
def _paths() -> dict[str, Path]:
    """Return {module name: file} for every module under eokit/."""
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str) -> str:
    """Return the eokit module a dotted name lives in (the longest known prefix), or the name if external."""
    if not _within(name, "eokit"):
        return name
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in _paths():
            return ".".join(parts[:k])
    return name


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str) -> None:
        self.module = module
        self.is_pkg = _paths()[module].name == "__init__.py"
        self.functions: list[str] = []
        self.edges: list[Edge] = []

    def _add(self, target: str, line: int) -> None:
        target = _resolve(target)
        if target != self.module:
            fn = ".".join(self.functions) or None
            self.edges.append(Edge(self.module, target, line, not self.functions, fn))

    def _function(self, node: ast.AST) -> None:
        self.functions.append(getattr(node, "name", "<lambda>"))
        self.generic_visit(node)
        self.functions.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):  # type-only imports never run
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:  # relative: from the package holding this module
            package = self.module.split(".")
            package = package if self.is_pkg else package[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join(package + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        if base == "__future__":
            return
        for alias in node.names:
            full = f"{base}.{alias.name}"
            self._add(full if full in _paths() else base, node.lineno)

    def visit_Call(self, node: ast.Call) -> None:
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
        if (
            name in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            self._add(node.args[0].value, node.lineno)
        self.generic_visit(node)


@lru_cache(maxsize=1)
def _edges() -> dict[str, tuple[Edge, ...]]:
    """Return {module: its import edges} for every eokit module."""
    out = {}
    for module, path in _paths().items():
        visitor = _Imports(module)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        out[module] = tuple(visitor.edges)
    return out


def _parents(module: str) -> list[str]:
    """Return the packages Python runs before `module` (eokit, eokit.datasets, ...)."""
    parts = module.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


def _next(module: str, module_level_only: bool) -> list[tuple[str, Edge | None]]:
    steps: list[tuple[str, Edge | None]] = [(p, None) for p in _parents(module)]
    for e in _edges().get(module, ()):
        if e.module_level or not module_level_only:
            steps.append((e.target, e))
    return steps


def _path_to(start: str, hit, module_level_only: bool = False) -> list[Edge] | None:
    """Return the chain of imports from `start` to the first name where hit(name), or None (breadth first)."""
    seen = {start: []}
    queue = deque([start])
    while queue:
        module = queue.popleft()
        for target, edge in _next(module, module_level_only):
            if target in seen:
                continue
            chain = seen[module] + ([edge] if edge else [])
            if hit(target):
                return chain or [Edge(module, target, 0, True, None)]
            seen[target] = chain
            if target in _paths():
                queue.append(target)
    return None


def _chain_text(chain: list[Edge]) -> str:
    return " -> ".join(f"{e.target} [{e.where()}]" for e in chain)


def _layer_of(module: str) -> str | None:
    best = None
    for layer, names in LAYERS.items():
        for name in names:
            covers = module == name if name == "eokit" else _within(module, name)  # the package: __init__ only
            if covers and (best is None or len(name) > len(best[1])):
                best = (layer, name)
    return best[0] if best else None


def _group(module: str, groups) -> str | None:
    return next((g for g in groups if _within(module, g)), None)


def _tf_free() -> list[str]:
    return [m for m in _paths() if _group(m, TF_MODULES) is None and _group(m, TF_LAZY) is None]


def _is_tf(name: str) -> bool:
    return name.split(".")[0] in TF_ROOTS or name.startswith("tensorflow")


# ---------------------------------------------------------------------------------------------------------


def test_the_parser_sees_every_kind_of_import() -> None:
    """Function-level, relative and `from eokit import x` imports resolve to eokit modules."""
    edges = {(e.target, e.module_level) for e in _edges()["eokit.cube"]}
    assert ("eokit.sentinel2", True) in edges and ("eokit.tifstack", True) in edges  # from eokit import a, b
    assert any(
        e.target == "tensorflow" and not e.module_level
        for m in _edges()
        for e in _edges()[m]
        if _within(m, "eokit.train")
    )
    assert _resolve("eokit.schema.TS2C_BANDS") == "eokit.schema" and _resolve("numpy.random") == "numpy.random"
    assert len(_paths()) > 25 and all(_edges()[m] is not None for m in _paths())


def test_every_module_has_a_layer() -> None:
    """A new module is placed in LAYERS here and in docs/ARCHITECTURE.md before it is used."""
    missing = [f"{p.relative_to(ROOT)}" for m, p in _paths().items() if _layer_of(m) is None]
    assert not missing, (
        f"modules in no layer of tests/test_architecture.py LAYERS (add them, and to the doc): {missing}"
    )


def test_no_import_points_up_the_layers() -> None:
    """Every import (function-level ones too) goes to the same layer or one below."""
    order = {layer: i for i, layer in enumerate(LAYERS)}
    bad = []
    for module, edges in _edges().items():
        src = _layer_of(module)
        for e in edges:
            dst = _layer_of(e.target) if e.target in _paths() else None
            if src is not None and dst is not None and order[dst] > order[src]:
                bad.append(
                    f"{e.where()}: {module} ({src}) imports {e.target} ({dst}): upward edge, "
                    f"layers are {' < '.join(LAYERS)}"
                )
    assert not bad, "\n".join(bad)


def test_tensorflow_free_modules_never_reach_tensorflow() -> None:
    """(a) Readers, data prep, the runner...: no TensorFlow/Keras, directly or through any other eokit module."""
    allowed = "; ".join(f"{m}: {why}" for m, why in {**TF_MODULES, **TF_LAZY}.items())
    bad = []
    for module in _tf_free():
        chain = _path_to(module, _is_tf)
        if chain:
            bad.append(
                f"{chain[0].where()}: {module} reaches {chain[-1].target} via {_chain_text(chain)}: "
                "rule (a) modules outside the TensorFlow set never import TensorFlow/Keras"
            )
    assert not bad, "\n".join(bad) + f"\n(the modules allowed TensorFlow and why: {allowed})"


def test_lazy_modules_import_no_tensorflow_at_module_level() -> None:
    """(a) The card and evaluation load Keras only inside the functions that deserialise a model."""
    bad = []
    for module in (m for m in _paths() if _group(m, TF_LAZY)):
        chain = _path_to(module, _is_tf, module_level_only=True)
        if chain:
            bad.append(
                f"{chain[0].where()}: {module} imports {chain[-1].target} at module level via "
                f"{_chain_text(chain)}: rule (a) {TF_LAZY[_group(module, TF_LAZY)]}"
            )
    assert not bad, "\n".join(bad)


def test_sampling_and_patches_never_reach_models_or_train() -> None:
    """(b) Making a training set needs no model code, not even through another module."""
    bad = []
    for module in _paths():
        group = _group(module, NO_TRAINING_CODE)
        if group is None:
            continue
        forbidden = NO_TRAINING_CODE[group]
        chain = _path_to(module, lambda t, forbidden=forbidden: any(_within(t, f) for f in forbidden))
        if chain:
            bad.append(
                f"{chain[0].where()}: {module} reaches {chain[-1].target} via {_chain_text(chain)}: "
                f"rule (b) sampling and patches never import {', '.join(forbidden)}"
            )
    assert not bad, "\n".join(bad)


def test_only_the_command_line_imports_the_runner() -> None:
    """(c) Nothing imports pipeline or cli except cli and `python -m eokit`."""
    bad = [
        f"{e.where()}: {e.source} imports {e.target}: rule (c) only {', '.join(RUNNER_IMPORTERS[:2])} import the runner"
        for edges in _edges().values()
        for e in edges
        if _group(e.target, RUNNER)
        and not _group(e.source, RUNNER_IMPORTERS)
        and not (_group(e.target, ("eokit.pipeline",)) and _group(e.source, ("eokit.pipeline",)))
    ]
    bad += [
        f"{e.where()}: {e.source} imports {e.target}: rule (c) the runner does not import the command line"
        for edges in _edges().values()
        for e in edges
        if _group(e.source, ("eokit.pipeline",)) and _group(e.target, ("eokit.cli",))
    ]
    assert not bad, "\n".join(bad)


def test_no_import_cycles() -> None:
    """(d) Module-level imports between eokit modules form no cycle (Tarjan's strongly connected components)."""
    graph = {m: sorted({e.target for e in es if e.module_level and e.target in _paths()}) for m, es in _edges().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    msgs = []
    for comp in cycles:
        lines = [
            e.where() + f" {e.source} -> {e.target}"
            for m in comp
            for e in _edges()[m]
            if e.module_level and e.target in comp
        ]
        msgs.append(f"rule (d) import cycle among {comp}: " + "; ".join(lines))
    assert not msgs, "\n".join(msgs)


def test_maps_and_evaluate_reach_models_through_the_card_not_train() -> None:
    """Inference (maps, evaluate, card) never imports the training code: the model card is the interface."""
    bad = []
    for module in _paths():
        if _group(module, ("eokit.maps", "eokit.evaluate", "eokit.card")):
            chain = _path_to(module, lambda t: _within(t, "eokit.train"))
            if chain:
                bad.append(
                    f"{chain[0].where()}: {module} reaches eokit.train via {_chain_text(chain)}: "
                    "maps and evaluation load models and prepare inputs through eokit.card"
                )
    assert not bad, "\n".join(bad)


def test_loading_a_model_registers_custom_layers_through_models() -> None:
    """Loading a model imports no augmentation module itself: custom layers are registered by eokit.models."""
    bad = [
        f"{e.where()}: {e.source} imports {e.target} to load a model: register custom layers through eokit.models"
        for m, edges in _edges().items()
        if not _group(m, ("eokit.models", "eokit.augment"))
        for e in edges
        if e.function
        and _within(e.target, "eokit.augment")
        and any(k in e.function.split(".")[-1] for k in ("load_model", "register", "custom_objects"))
    ]
    assert not bad, "\n".join(bad)


_PROBE = r"""
import json, sys
out = {}
for name in sys.argv[1:]:
    __import__(name)
    tf = sorted(m for m in ("tensorflow", "keras", "tf_keras") if m in sys.modules)
    out[name] = tf
    if tf:
        break
print(json.dumps(out))
"""


def test_importing_tensorflow_free_modules_loads_no_tensorflow() -> None:
    """At run time: `import eokit.<module>` for each TensorFlow-free (or lazy) module leaves TF and Keras unloaded."""
    todo = sorted(_tf_free() + [m for m in _paths() if _group(m, TF_LAZY)])
    todo = [m for m in todo if m != "eokit.__main__"]  # runs the command line when imported
    culprits = []
    while todo:
        res = subprocess.run(
            [sys.executable, "-c", _PROBE, *todo], capture_output=True, text=True, cwd=ROOT, timeout=300, check=False
        )
        assert res.returncode == 0, res.stderr[-3000:]
        seen = json.loads(res.stdout.strip().splitlines()[-1])
        last = list(seen)[-1]
        if seen[last]:
            culprits.append(f"import {last} loads {', '.join(seen[last])}")
        todo = todo[len(seen) :]
    assert not culprits, "\n".join(culprits)


def _doc_layers() -> dict[str, list[str]]:
    """Return {layer: [modules]} from the doc's 'Import layers' table."""
    text = DOC.read_text(encoding="utf-8")
    assert "## Import layers" in text, f"{DOC} has no '## Import layers' section"
    section = text.split("## Import layers", 1)[1].split("\n## ", 1)[0]
    out = {}
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if row.startswith("|") and len(cells) >= 2 and cells[0] in LAYERS:
            out[cells[0]] = [c.strip("` ") for c in cells[1].split(",") if c.strip()]
    return out


def test_the_architecture_doc_lists_the_layers_enforced_here() -> None:
    """docs/ARCHITECTURE.md 'Import layers' lists the same layers, in order, with the same modules."""
    doc = _doc_layers()
    assert list(doc) == list(LAYERS), f"doc layers {list(doc)} != test layers {list(LAYERS)}"
    for layer, names in LAYERS.items():
        assert sorted(doc[layer]) == sorted(names), f"layer {layer!r}: doc {doc[layer]} != test {list(names)}"


def actual_edges() -> list[str]:
    """Return the eokit -> eokit imports as 'layer: source -> target (lazy)' lines, sorted."""
    lines = set()
    for module, edges in _edges().items():
        for e in edges:
            if e.target in _paths() and e.target != "eokit":
                lazy = "" if e.module_level else " (lazy)"
                lines.add(f"{_layer_of(module)}: {module} -> {e.target}{lazy}")
    return sorted(lines, key=lambda s: (list(LAYERS).index(s.split(":")[0]) if s.split(":")[0] in LAYERS else 99, s))


if __name__ == "__main__":
    print("\n".join(actual_edges()))
