"""Import structure: layers that only import downward, and light imports where start-up time matters.

Importing a simulator base class (every Ray worker, every user simulator file) and the CLI's quick
commands must not pay for torch, Ray, BoTorch, SciPy or matplotlib; no module may be part of an
import cycle. Start-up checks run in a fresh interpreter, since this test process has imported
everything already.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, base_study

PACKAGES = ("optimizer", "simulators", "surrogates")
#: Modules whose import costs seconds: none of them may load on a path that only reads names or records.
HEAVY = ("torch", "ray", "botorch", "gpytorch", "scipy.stats", "matplotlib", "ot")
#: The read-only reporting layer: it reads campaign directories and must not import the driver.
READ_ONLY = ("optimizer.records", "optimizer.results", "optimizer.pareto", "optimizer.report", "optimizer.diagnostics")


# -- the import graph, from the source -------------------------------------------------------
def project_modules() -> dict[str, Path]:
    """Dotted module name → file, for every module of the packages."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, include_deferred: bool, is_package: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported (also deferred ones if asked).

    Function bodies and ``if TYPE_CHECKING:`` blocks are deferred; class bodies and try/if blocks run.
    A package ``__init__``'s ``TYPE_CHECKING`` block only re-declares its lazily loaded names for type
    checkers (see :func:`optimizer.registry.lazy_exports`), so it is no dependency of the package.
    """
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if include_deferred:
                stack.extend(ast.iter_child_nodes(node))
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            if include_deferred and not is_package:
                stack.extend(node.body)
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def import_graph(include_deferred: bool = False) -> dict[str, set[str]]:
    """Module → the project modules its import statements load.

    ``import a.b.c`` and ``from a.b import c`` also initialise the packages ``a`` and ``a.b``, so
    those count too, except packages above the importing module itself (initialised before it).
    """
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        own_parents = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(), str(path)), include_deferred, is_pkg):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in names:
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    mod = ".".join(parts[:i])
                    if mod in modules and mod != name and (mod == target or mod not in own_parents):
                        targets.add(mod)
        graph[name] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for w in graph.get(todo.pop(), ()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_graph_sees_imports() -> None:
    """The walker resolves absolute, relative and package imports (so an empty result means something)."""
    g = import_graph()
    assert "optimizer.registry" in g["simulators"]
    assert "optimizer.errors" in g["optimizer.registry"]
    assert "optimizer.progress" in g["optimizer.campaign"]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_at_module_level() -> None:
    assert find_cycles(import_graph()) == []


def test_no_import_cycle_counting_deferred_imports() -> None:
    """Also with imports inside functions and under ``if TYPE_CHECKING:`` (where ``campaign`` ↔ ``progress``
    and ``pareto`` ↔ ``results`` used to meet): a deferred import is for cost, not for breaking a cycle."""
    assert find_cycles(import_graph(include_deferred=True)) == []


@pytest.mark.parametrize("module", READ_ONLY)
def test_reporting_layer_does_not_import_the_driver(module: str) -> None:
    """Reading a campaign directory never loads the loop, the executors or the strategies' factories."""
    reached = reachable(import_graph(include_deferred=True), module) | {module}
    assert "optimizer.campaign" not in reached


#: The optimiser modules ``simulators`` and ``surrogates`` may import: its dependency-free bottom (the
#: registries they keep their names in, and the errors :func:`simulators.factory.build_simulator` raises).
BOTTOM_LAYER = {"optimizer", "optimizer.registry", "optimizer.errors"}


@pytest.mark.parametrize("include_deferred", [False, True])
def test_simulators_do_not_import_the_optimizer_beyond_its_bottom_layer(include_deferred: bool) -> None:
    """``simulators`` and ``surrogates`` sit below the optimiser: only its registry and errors are theirs to use,
    directly or through anything they import, also inside functions (a deferred import is still a dependency)."""
    g = import_graph(include_deferred=include_deferred)
    for pkg in ("simulators", "surrogates"):
        for mod in (m for m in g if m == pkg or m.startswith(pkg + ".")):
            assert {m for m in g[mod] if m.startswith("optimizer")} <= BOTTOM_LAYER, (mod, sorted(g[mod]))
            reached = reachable(g, mod)
            assert reached <= BOTTOM_LAYER | {m for m in g if not m.startswith("optimizer")}, (
                mod, sorted(r for r in reached if r.startswith("optimizer")))


def test_layering_check_sees_a_deferred_import_of_the_optimizer() -> None:
    """The walker counts an import inside a function body, where the old factory imported the study schema."""
    tree = ast.parse("def build():\n    from optimizer.study import SimulatorSpec\n")
    assert [n.module for n in _imports(tree, include_deferred=True, is_package=False)] == ["optimizer.study"]
    assert list(_imports(tree, include_deferred=False, is_package=False)) == []


# -- what a fresh interpreter loads ------------------------------------------------------------
def loaded_after(code: str, cwd: Path | None = None) -> dict[str, bool]:
    """Run ``code`` in a fresh interpreter; which of :data:`HEAVY` are in ``sys.modules`` afterwards."""
    probe = f"import io, contextlib, json, sys\n{code}\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         cwd=cwd or ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def heavy(loaded: dict[str, bool]) -> list[str]:
    return sorted(m for m, is_loaded in loaded.items() if is_loaded)


QUIET_MAIN = "from optimizer import cli\nwith contextlib.redirect_stdout(io.StringIO()): rc = cli.main({argv!r})\nassert rc == 0, rc"


@pytest.mark.parametrize("code", [
    "import simulators.base",
    "import simulators.factory",
    "from simulators.base import Simulator, InfeasibleDesign, SimulationResult",
    "import simulators",
    "from simulators import SIMULATORS; SIMULATORS.names()",
    "import surrogates; surrogates.SURROGATES.names()",
    "import optimizer",
    "from optimizer.strategies import STRATEGIES; STRATEGIES.names()",
    "from optimizer.executors import EXECUTORS; EXECUTORS.names()",
    "import optimizer.cli; optimizer.cli.build_parser()",
])
def test_light_imports(code: str) -> None:
    assert heavy(loaded_after(code)) == []


def test_help_and_version_are_light() -> None:
    for flag in ("--help", "--version"):
        code = ("from optimizer import cli\ntry:\n    with contextlib.redirect_stdout(io.StringIO()): cli.main([%r])\n"
                "except SystemExit as e:\n    assert e.code == 0, e.code" % flag)
        assert heavy(loaded_after(code)) == [], flag


@pytest.mark.parametrize("argv", [["list"], ["list", "simulators"], ["list", "strategies"], ["list", "executors"]])
def test_list_is_light(argv: list[str]) -> None:
    assert heavy(loaded_after(QUIET_MAIN.format(argv=argv))) == []


def test_list_verbose_imports_only_the_simulator_asked_for() -> None:
    code = "import contextlib, io, json, sys\n" + QUIET_MAIN.format(argv=["list", "simulators", "command", "-v"])
    code += "\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('simulators.'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, check=True)
    assert json.loads(out.stdout) == ["simulators.base", "simulators.catalog", "simulators.command"]


def test_a_study_with_a_bad_field_is_refused_before_anything_heavy_loads(tmp_path: Path) -> None:
    """`optimize run` checks the study's own fields before importing the driver: a typo is answered at once."""
    bad = base_study(budget={"calls": 0, "initial_design": 3})
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(bad, sort_keys=False))
    code = ("from optimizer import cli\nwith contextlib.redirect_stderr(io.StringIO()) as err: "
            f"rc = cli.main(['run', {str(study)!r}, '--output', {str(tmp_path / 'out')!r}])\n"
            "assert rc == 2 and 'budget.calls' in err.getvalue(), (rc, err.getvalue())")
    assert heavy(loaded_after(code)) == []
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def campaign_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 6-call single-objective campaign (inline executor)."""
    tmp = tmp_path_factory.mktemp("imports")
    study = tmp / "study.yaml"
    study.write_text(yaml.safe_dump(base_study(), sort_keys=False))
    out = tmp / "camp"
    subprocess.run([sys.executable, "-m", "optimizer.cli", "run", str(study), "--output", str(out), "-q"],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    return out


def test_export_reads_records_without_the_driver_or_torch(campaign_dir: Path, tmp_path: Path) -> None:
    argv = ["export", str(campaign_dir), "--output", str(tmp_path / "calls.csv")]
    code = QUIET_MAIN.format(argv=argv) + "\nassert 'optimizer.campaign' not in sys.modules"
    assert heavy(loaded_after(code)) == []
    assert (tmp_path / "calls.csv").read_text().count("\n") == 7  # header + 6 calls


def test_status_does_not_import_the_driver(campaign_dir: Path) -> None:
    """``status`` reads records only; it still builds the simulator for its known-optimum line (a benchmark
    here, which is torch code) and fits the recommendation's GP (BoTorch, and scipy.stats through GP-BO's
    helpers), so those are allowed; the driver, Ray and matplotlib are not."""
    code = QUIET_MAIN.format(argv=["status", str(campaign_dir)]) + "\nassert 'optimizer.campaign' not in sys.modules"
    assert set(heavy(loaded_after(code))) <= {"torch", "botorch", "gpytorch", "scipy.stats"}


def test_diagnostics_helpers_load_without_torch() -> None:
    """`status` and `report` read `registered_simulator` and `unavailable_offline` from here; torch loads only
    where a surrogate is fitted."""
    assert heavy(loaded_after("import optimizer.diagnostics")) == []


# -- every public name still where it was -------------------------------------------------------
def test_public_names_still_importable() -> None:
    import optimizer
    from optimizer import Campaign, CampaignSummary, StudyConfig, load_study, run_campaign, validate_study
    from optimizer.campaign import META_FILE, STRATEGY_STATE, STUDY_FILE, best_so_far, build_history
    from optimizer.executors import EXECUTORS, CallOutcome, CallRequest, Executor, execute_call, simulator_args
    from optimizer.results import finished_in_order
    from optimizer.strategies import STRATEGIES, History, Strategy, initial_design
    from simulators import SIMULATORS, FunctionSimulator, InfeasibleDesign, SimulationResult, Simulator
    from surrogates import SURROGATES, Surrogate

    import optimizer.campaign as campaign
    import optimizer.records as records
    import surrogates.base

    assert Campaign is campaign.Campaign and run_campaign is campaign.run_campaign
    assert (best_so_far, build_history, finished_in_order) == (records.best_so_far, records.build_history,
                                                              records.finished_in_order)
    assert Surrogate is surrogates.base.Surrogate and issubclass(SIMULATORS.get("command"), Simulator)
    assert {"Campaign", "load_study", "__version__"} <= set(dir(optimizer))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        optimizer.nope  # noqa: B018
    del (CampaignSummary, StudyConfig, validate_study, META_FILE, STRATEGY_STATE, STUDY_FILE, EXECUTORS, CallOutcome,
         CallRequest, Executor, simulator_args, execute_call, STRATEGIES, History, Strategy, initial_design,
         FunctionSimulator, InfeasibleDesign, SimulationResult, SURROGATES, load_study)


def test_every_from_import_of_a_lazy_package_names_an_export() -> None:
    """A lazy ``__init__`` answers any attribute through ``__getattr__``, so a type checker cannot see a name it
    dropped: every ``from PKG import NAME`` in the code, tests and benchmarks must name an export or a submodule."""
    import ast
    import importlib

    lazy = {"optimizer", "optimizer.strategies", "optimizer.executors", "detopt", "surrogates"}
    missing = []
    for d in ("optimizer", "simulators", "surrogates", "detopt", "tests", "bench"):
        for path in sorted((ROOT / d).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in lazy:
                    pkg = importlib.import_module(node.module)
                    for alias in node.names:
                        name = alias.name
                        if name != "*" and name not in dir(pkg) and importlib.util.find_spec(f"{node.module}.{name}") is None:
                            missing.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.module}.{name}")
    assert not missing, missing
