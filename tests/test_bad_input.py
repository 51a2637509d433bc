"""Bad input, table-driven: every case is refused by ``optimize run`` with exit code 2 and one line
``error: FILE: field.path: problem`` (or ``FILE:LINE:COL: problem`` for what YAML itself sees),
no traceback, and nothing written.

Each case writes a study (and, where it needs one, a module or a file beside it) to ``tmp_path``
and runs the CLI in-process from another directory; a few run it as a subprocess to show that no
traceback reaches stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROOT, base_study
from optimizer.cli import main


@dataclass(frozen=True)
class Case:
    """One bad input.

    Attributes:
        id: the test id.
        study: a patch of :func:`conftest.base_study` (dict), raw YAML text (str) or raw bytes.
        expect: text the error line must hold after ``error: FILE`` (the field path, usually with the problem).
        files: extra files written beside the study: name → text (``{dir}`` is replaced by the study's folder).
    """

    id: str
    study: dict[str, Any] | str | bytes
    expect: str
    files: dict[str, str] = field(default_factory=dict)


def _params(**p: Any) -> dict[str, Any]:
    return {"parameters": p}


X2 = {"low": -5, "high": 5}


def _module_case(id: str, name: str, body: str, expect: str, options: dict[str, Any] | None = None) -> Case:
    """A study whose simulator is ``<name>:f`` from a module written beside it."""
    spec = {"name": f"{name}:f", "samples_per_call": 10, **({"options": options} if options else {})}
    return Case(id, {"simulator": spec}, expect, {f"{name}.py": body})


def _command(options: dict[str, Any], **over: Any) -> dict[str, Any]:
    opts = {"command": [sys.executable, "{dir}/prog.py", "{x1}"], "output": "out.npy", **options}
    return {"simulator": {"name": "command", "samples_per_call": 10, "options": opts}, **over}


def _wugo(**options: Any) -> dict[str, Any]:
    return {"strategy": {"name": "wugo", "options": options}}


def _gp(**options: Any) -> dict[str, Any]:
    return {"strategy": {"name": "gp", "options": options}}


GOOD_YAML = yaml.safe_dump(base_study(), sort_keys=False)
DEEP = 20000
CHAIN = "a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))

CASES: list[Case] = [
    # -- the file and its YAML -------------------------------------------------------------
    Case("duplicate-top-key", GOOD_YAML + "name: other\n", ":21:1: duplicate key 'name' (first given on line 1)"),
    Case("duplicate-parameter", GOOD_YAML.replace("parameters:\n", "parameters:\n  x2: {low: 0, high: 1}\n"),
         "duplicate key 'x2' (first given on line 4)"),
    Case("duplicate-flow-key", GOOD_YAML + "description: {a: 1, a: 2}\n", "duplicate key 'a'"),
    Case("nesting-20000-lists", GOOD_YAML.replace("strategy", "s") + "strategy: {name: sobol, options: {a: "
         + "[" * DEEP + "]" * DEEP + "}}\n", "nested deeper than 64 levels"),
    Case("nesting-mappings", "name: t\ndescription: " + "{a: " * 200 + "1" + "}" * 200 + "\n",
         "nested deeper than 64 levels"),
    Case("alias-bomb", CHAIN + GOOD_YAML, "more than 1000000 values once aliases are expanded"),
    Case("alias-cycle", "loop: &l [1, *l]\n" + GOOD_YAML, "a YAML alias refers to the node that contains it"),
    Case("empty-file", "", ": the file is empty"),
    Case("only-comments", "# nothing here\n", ": the file is empty"),
    Case("binary-file", b"\x7fELF\x02\x01\x01\x00\x00\x00", ": a binary file, not a YAML study"),
    Case("not-utf8", "name: caf\xe9\n".encode("latin-1"), ": not UTF-8 text (byte 9)"),
    Case("top-level-list", "- a\n- b\n", ": a study must be a mapping of keys, got list"),
    Case("top-level-scalar", "just words\n", ": a study must be a mapping of keys, got str"),
    Case("yaml-syntax", "name: t\nparameters: {x1: [1, 2}\n", ":2:23: not valid YAML"),
    Case("python-tag", "name: !!python/object/apply:os.system [echo hi]\n", "not valid YAML: could not determine a constructor"),
    Case("two-documents", GOOD_YAML + "---\n" + GOOD_YAML, ":21:1: not valid YAML: but found another document"),
    Case("tab-indent", "name: t\nparameters:\n\tx1: {low: 0, high: 1}\n", "not valid YAML"),
    # -- names ------------------------------------------------------------------------------
    Case("parameter-name-newline", _params(**{"x1\n": {"low": 0, "high": 1}, "x2": X2}),
         ": parameters: 'x1\\n' is not a valid name"),
    Case("parameter-name-300", _params(**{"x" * 300: {"low": 0, "high": 1}, "x2": X2}),
         "xxx... is not a valid name: longer than 64 characters"),
    Case("study-name-300", {"name": "t" * 300}, "... is not a valid study name: longer than 64 characters"),
    Case("study-name-newline", {"name": "t\n"}, ": name: 't\\n' is not a valid study name"),
    Case("study-name-slash", {"name": "../escape"}, ": name: '../escape' is not a valid study name"),
    Case("study-name-number", {"name": 42}, ": name: Input should be a valid string (got 42)"),
    Case("objective-name-digit", {"objectives": {"1f": {}}}, ": objectives: '1f' is not a valid name"),
    Case("constraint-name-space", {"constraints": {"c c": {"statistic": "mean", "upper": 1}}},
         ": constraints: 'c c' is not a valid name"),
    Case("parameter-name-int-key", "name: t\nparameters:\n  1: {low: 0, high: 1}\n", ": parameters: 1 is not a valid name"),
    Case("output-name-bad", {"simulator": {"name": "three_hump_camel", "outputs": ["y y"]}},
         ": simulator.outputs[0]: 'y y' is not a valid output name"),
    Case("output-names-repeat", {"simulator": {"name": "sims_for_tests:quadratic", "outputs": ["y", "y"]}},
         ": simulator.outputs: output names repeat"),
    # -- numbers ----------------------------------------------------------------------------
    Case("low-bool", _params(x1={"low": True, "high": 5}, x2=X2), ": parameters.x1.low: Input should be a valid number (got True)"),
    Case("high-string", _params(x1={"low": 0, "high": "5"}, x2=X2), ": parameters.x1.high: Input should be a valid number (got '5')"),
    Case("low-nan", GOOD_YAML.replace("low: -5", "low: .nan", 1), ": parameters.x1.low: Input should be a finite number"),
    Case("high-inf", GOOD_YAML.replace("high: 5", "high: .inf", 1), ": parameters.x1.high: Input should be a finite number"),
    Case("bounds-1.7e308", _params(x1={"low": -1.7e308, "high": 1.7e308}, x2=X2),
         ": parameters.x1.low: -1.7e+308 is beyond the largest bound detopt handles"),
    Case("log-low-subnormal", _params(x1={"low": 1e-320, "high": 1, "log": True}, x2=X2), ": parameters.x1.low: a log-scaled parameter needs low >= 1e-300"),
    Case("integer-bound-huge", _params(x1={"low": 0, "high": 1e20, "integer": True}, x2=X2), ": parameters.x1.high: an integer parameter's bounds"),
    Case("log-string", _params(x1={"low": 1, "high": 2, "log": "yes please"}, x2=X2), ": parameters.x1.log: Input should be a valid boolean"),
    Case("samples-negative", {"simulator": {"name": "three_hump_camel", "samples_per_call": -5}}, ": simulator.samples_per_call: Input should be greater than or equal to 1"),
    Case("samples-float", {"simulator": {"name": "three_hump_camel", "samples_per_call": 1.5}}, ": simulator.samples_per_call: Input should be a valid integer"),
    Case("samples-bool", {"simulator": {"name": "three_hump_camel", "samples_per_call": True}}, ": simulator.samples_per_call: Input should be a valid integer"),
    Case("seed-negative", {"seed": -1}, ": seed: Input should be greater than or equal to 0"),
    Case("seed-string", {"seed": "abc"}, ": seed: Input should be a valid integer (got 'abc')"),
    Case("budget-string", {"budget": {"calls": "10"}}, ": budget.calls: Input should be a valid integer (got '10')"),
    Case("num-cpus-nan", GOOD_YAML.replace("backend: inline", "backend: inline\n  num_cpus: .nan"), ": execution.num_cpus: Input should be a finite number"),
    Case("timeout-inf", GOOD_YAML.replace("backend: inline", "backend: inline\n  timeout: .inf"), ": execution.timeout: Input should be a finite number"),
    Case("q-above-1", {"objectives": {"f": {"statistic": "quantile", "q": 1.5}}}, ": objectives.f.q: Input should be less than 1"),
    Case("q-zero", {"objectives": {"f": {"statistic": "quantile", "q": 0}}}, ": objectives.f.q: Input should be greater than 0"),
    Case("threshold-nan", GOOD_YAML.replace("statistic: mean", "statistic: fraction_above\n    threshold: .nan"), ": objectives.f.threshold: Input should be a finite number"),
    Case("constraint-upper-inf", GOOD_YAML + "constraints:\n  c: {statistic: mean, upper: .inf}\n", ": constraints.c.upper: Input should be a finite number"),
    Case("reference-string", {"objectives": {"f": {"reference": "abc"}}}, ": objectives.f.reference: Input should be a valid number"),
    Case("unknown-statistic", {"objectives": {"f": {"statistic": "mode"}}}, ": objectives.f.statistic: Input should be"),
    Case("quantile-with-weight", {"objectives": {"f": {"statistic": "quantile", "q": 0.5, "weight": "y"}}}, ": objectives.f: weight is not supported with statistic 'quantile'"),
    Case("baseline-param-string", {"baselines": [{"name": "b", "params": {"x1": "a", "x2": 0}}]}, ": baselines[0].params.x1: 'a' is not a number"),
    Case("baseline-param-bool", {"baselines": [{"name": "b", "params": {"x1": True, "x2": 0}}]}, ": baselines[0].params.x1: True is not a number or a choice"),
    Case("baseline-params-list", {"baselines": [{"name": "b", "params": [1, 2]}]}, ": baselines[0].params: Input should be a valid dictionary"),
    Case("baselines-mapping", {"baselines": {"b": {"x1": 0, "x2": 0}}}, ": baselines: Input should be a valid list"),
    Case("q-without-quantile", {"objectives": {"f": {"statistic": "mean", "q": 0.9}}}, ": objectives.f.q: q is only used with statistic 'quantile'"),
    Case("threshold-without-fraction", {"objectives": {"f": {"statistic": "median", "threshold": 1}}},
         ": objectives.f.threshold: threshold is only used with fraction_above/fraction_below"),
    Case("baseline-names-repeat", {"baselines": [{"name": "b", "params": {"x1": 0, "x2": 0}}, {"name": "b", "params": {"x1": 1, "x2": 0}}]},
         ": baselines[1].name: 'b' is also the name of baselines[0]"),
    Case("baseline-name-newline", {"baselines": [{"name": "b\nc", "params": {"x1": 0, "x2": 0}}]}, ": baselines[0].name: 'b\\nc' must be one line"),
    Case("output-empty", {"output": ""}, ": output: String should have at least 1 character"),
    Case("resources-negative", {"execution": {"backend": "inline", "resources": {"GPU": -1}}},
         ": execution.resources.GPU: Input should be greater than or equal to 0"),
    # -- categorical and conditional parameters (tests/test_mixed.py has the rest) -------------
    Case("choices-with-bounds", _params(x1={"choices": ["Pb", "W"], "high": 1}, x2=X2),
         ": parameters.x1.high: a categorical parameter (choices) takes no low, high, log or integer"),
    Case("choices-repeat", _params(x1={"choices": ["Pb", "W", "W"]}, x2=X2), ": parameters.x1.choices[2]: 'W' repeats choices[1]"),
    Case("choices-empty", _params(x1={"choices": []}, x2=X2), ": parameters.x1.choices: needs at least one choice"),
    Case("when-unknown-parent", _params(x1={"low": 0, "high": 1, "when": {"material": ["W"]}}, x2=X2),
         ": parameters.x1.when.material: unknown parameter (parameters: x1, x2)"),
    Case("when-not-categorical", _params(x1={"low": 0, "high": 1, "when": {"x2": [1]}}, x2=X2),
         ": parameters.x1.when.x2: 'x2' is not categorical"),
    Case("when-cycle", _params(x1={"choices": ["a", "b"], "when": {"x2": ["c"]}}, x2={"choices": ["c"], "when": {"x1": ["a"]}}),
         ": parameters.x1.when: its conditions form a cycle through x1 -> x2 -> x1"),
    # -- sections of the wrong kind -----------------------------------------------------------
    Case("parameters-list", {"parameters": [1, 2]}, ": parameters: Input should be a valid dictionary"),
    Case("parameter-scalar", _params(x1=5, x2=X2), ": parameters.x1: Input should be a valid dictionary"),
    Case("simulator-string", {"simulator": "three_hump_camel"}, ": simulator: Input should be a valid dictionary"),
    Case("objectives-empty-list", {"objectives": []}, ": objectives: Input should be a valid dictionary"),
    Case("strategy-null", {"strategy": None}, ": strategy: Input should be a valid dictionary"),
    Case("backend-number", {"execution": {"backend": 3}}, ": execution.backend: Input should be a valid string (got 3)"),
    Case("simulator-options-list", {"simulator": {"name": "three_hump_camel", "options": [1]}}, ": simulator.options: Input should be a valid dictionary"),
    # -- simulators -------------------------------------------------------------------------
    Case("simulator-unknown", {"simulator": {"name": "warp_drive"}}, ": simulator.name: unknown simulator 'warp_drive'"),
    Case("simulator-bad-option", {"simulator": {"name": "three_hump_camel", "options": {"warp": 9}}}, ": simulator.options: three_hump_camel:"),
    Case("simulator-outputs-registered", {"simulator": {"name": "three_hump_camel", "outputs": ["y"]}},
         ": simulator.outputs: only a module:function simulator takes outputs"),
    Case("module-missing", {"simulator": {"name": "no_such_module_here:f"}}, ": simulator.name: cannot import module 'no_such_module_here'"),
    Case("module-form", {"simulator": {"name": "sims_for_tests:"}}, ": simulator.name: 'sims_for_tests:' is not of the form module:attribute"),
    Case("module-no-attribute", {"simulator": {"name": "sims_for_tests:nope"}}, ": simulator.name: module 'sims_for_tests' has no attribute 'nope'"),
    Case("module-attribute-not-callable", {"simulator": {"name": "sims_for_tests:os"}}, "simulator.name: 'sims_for_tests:os' is neither"),
    _module_case("module-raises", "raising_sim", "raise RuntimeError('no licence\\nsecond line')\n",
                 ": simulator.name: importing module 'raising_sim' (from 'raising_sim:f') raised RuntimeError: no licence"),
    _module_case("module-syntax-error", "syntax_sim", "def f(params, n, seed)\n    return 1\n",
                 ": simulator.name: importing module 'syntax_sim' (from 'syntax_sim:f') raised SyntaxError:"),
    _module_case("module-exits", "exiting_sim", "import sys\nsys.exit(3)\n",
                 "raised SystemExit: 3"),
    _module_case("module-missing-dependency", "dep_sim", "import no_such_dependency_xyz\n",
                 ": simulator.name: cannot import module 'dep_sim' (from 'dep_sim:f'): No module named 'no_such_dependency_xyz'"),
    _module_case("function-one-argument", "sig1_sim", "def f(x):\n    return [1.0]\n",
                 ": simulator.name: f(x) must take (params, n, seed, **options)"),
    _module_case("function-unknown-option", "sig2_sim", "def f(params, n, seed):\n    return [1.0] * n\n",
                 ": simulator.options.scale: f(params, n, seed) cannot take option 'scale'", {"scale": 2}),
    _module_case("function-missing-option", "sig3_sim", "def f(params, n, seed, *, scale):\n    return [1.0] * n\n",
                 ": simulator.options: f(params, n, seed, *, scale): missing a required argument: 'scale'"),
    _module_case("function-option-shadows-n", "sig4_sim", "def f(params, n, seed, **kw):\n    return [1.0] * n\n",
                 ": simulator.options.n: f(params, n, seed, **kw) cannot take option 'n'", {"n": 3}),
    Case("class-constructor-raises", {"simulator": {"name": "class_sim:Sim", "samples_per_call": 10}},
         ": simulator.options: class_sim:Sim: RuntimeError: geometry file missing",
         {"class_sim.py": "from simulators import Simulator\n\nclass Sim(Simulator):\n    def __init__(self):\n"
                          "        raise RuntimeError('geometry file missing\\nmore')\n\n"
                          "    def simulate(self, params, n, seed):\n        return [0.0] * n\n"}),
    Case("class-not-a-simulator", {"simulator": {"name": "plain_sim:Sim", "samples_per_call": 10}},
         ": simulator.name: 'plain_sim:Sim' is neither a Simulator class nor a function",
         {"plain_sim.py": "class Sim:\n    pass\n"}),
    # -- the command simulator -----------------------------------------------------------------
    Case("command-string", _command({"command": "python3 prog.py"}),
         ": simulator.options.command: must be a list of strings (the program, then each argument)"),
    Case("command-number-argument", _command({"command": ["python3", 3]}), ": simulator.options.command: must be a list of strings"),
    Case("command-empty", _command({"command": []}), ": simulator.options.command: must not be empty"),
    Case("command-missing-output", {"simulator": {"name": "command", "options": {"command": ["true"]}}},
         ": simulator.options: command: CommandSimulator.__init__() missing 1 required positional argument: 'output'"),
    Case("command-output-suffix", _command({"output": "out.txt"}), ": simulator.options.output: cannot read '.txt' files"),
    Case("command-template-missing", _command({"input_template": "{dir}/no_such_template.txt"}),
         ": simulator.options.input_template: cannot read"),
    Case("command-parameter-seed", _command({}, **_params(x1=X2, seed={"low": 0, "high": 1})),
         ": parameters.seed: the command simulator fills {seed} itself"),
    Case("command-parameter-n", _command({}, **_params(x1=X2, n={"low": 0, "high": 1})), ": parameters.n: the command simulator fills {n} itself"),
    Case("command-parameter-workdir", _command({}, **_params(x1=X2, workdir={"low": 0, "high": 1})),
         ": parameters.workdir: the command simulator fills {workdir} itself"),
    Case("command-parameter-case-clash", _command({}, **_params(x1=X2, X1={"low": 0, "high": 1})),
         ": parameters.X1: 'X1' and 'x1' both become DETOPT_PARAM_X1"),
    Case("command-unknown-placeholder", _command({"command": ["prog", "--gap", "{gapp}"]}),
         ": simulator.options.command[2]: placeholder {gapp} names no parameter"),
    Case("command-bad-brace", _command({"command": ["prog", "{x1"]}), ": simulator.options.command[1]: bad placeholder"),
    Case("command-template-placeholder", _command({"input_template": "{dir}/in.tmpl"}),
         ": simulator.options.input_template: placeholder {thickness} names no parameter", {"in.tmpl": "t = {thickness}\n"}),
    Case("command-timeout-negative", _command({"timeout": -1}), ": simulator.options.timeout: must be a number of seconds > 0"),
    Case("command-env-list", _command({"env": {"X": [1]}}), ": simulator.options.env.X: must be a string or a number"),
    Case("command-cwd-file-missing", _command({"cwd_files": ["{dir}/geometry.gdml"]}), ": simulator.options.cwd_files[0]:"),
    Case("command-keep-string", _command({"keep": "yes"}), ": simulator.options.keep: must be true or false"),
    # -- strategies --------------------------------------------------------------------------------
    Case("wugo-kappa-string", _wugo(kappa="abc"), ": strategy.options.kappa: Input should be a valid number (got 'abc')"),
    Case("wugo-kappa-negative", _wugo(kappa=-1), ": strategy.options.kappa: Input should be greater than or equal to 0"),
    Case("wugo-kappa-nan", GOOD_YAML.replace("execution:", "strategy: {name: wugo, options: {kappa: .nan}}\nexecution:"),
         ": strategy.options.kappa: Input should be a finite number"),
    Case("wugo-kappa-bool", _wugo(kappa=True), ": strategy.options.kappa: Input should be a valid number"),
    Case("wugo-distance", _wugo(distance="w3"), ": strategy.options.distance: Input should be 'w1', 'w2' or 'energy'"),
    Case("wugo-surrogate-misspelt", _wugo(surrogate="mdnn"), ": strategy.options.surrogate: unknown surrogate 'mdnn'; known: mdn, wgan"),
    Case("wugo-surrogate-option-type", _wugo(surrogate_options={"steps": "abc"}), ": strategy.options.surrogate_options.steps: Input should be a valid integer"),
    Case("wugo-surrogate-option-unknown", _wugo(surrogate_options={"stepz": 5}), ": strategy.options.surrogate_options.stepz: unknown option"),
    Case("wugo-preset", _wugo(preset="fast"), ": strategy.options.preset: Input should be 'default' or 'wugo-paper'"),
    Case("wugo-projections-zero", _wugo(projections=0), ": strategy.options.projections: Input should be greater than or equal to 1"),
    Case("wugo-projections-float", _wugo(projections=2.5), ": strategy.options.projections: Input should be a valid integer"),
    Case("wugo-target-string", _wugo(target="low"), ": strategy.options.target: Input should be a valid number"),
    Case("wugo-plateau-negative", _wugo(plateau=-3), ": strategy.options.plateau: Input should be greater than or equal to 1"),
    Case("wugo-radii-negative", _wugo(radii=[0.1, -1]), ": strategy.options.radii[1]: Input should be greater than 0"),
    Case("wugo-objective-unknown", _wugo(objective="nope"), ": strategy.options.objective: 'nope' is not an objective"),
    Case("wugo-unknown-option", _wugo(kapa=2), ": strategy.options.kapa: unknown option; known:"),
    Case("wugo-uncertainty", _wugo(uncertainty="epistemic"),
         ": strategy.options.uncertainty: Input should be 'nearest', 'ensemble', 'spread', 'both' or 'residual'"),
    Case("wugo-residual-without-correction", _wugo(uncertainty="residual"),
         ": strategy.options.uncertainty: residual needs correction: gp"),
    Case("wugo-ei-without-residual", _wugo(criterion="ei", correction="gp"),
         ": strategy.options.criterion: ei needs uncertainty: residual"),
    Case("wugo-members-without-ensemble", _wugo(members=4), ": strategy.options.members: needs uncertainty: ensemble, spread or both"),
    Case("wugo-no-perturbations", _wugo(perturbations=0), ": strategy.options.perturbations: the local search"),
    Case("gp-acquisition", _gp(acquisition="ei"), ": strategy.options.acquisition: must be one of qlognei, qlogei, ucb, got 'ei'"),
    Case("gp-beta-negative", _gp(beta=-1), ": strategy.options.beta: Input should be greater than or equal to 0"),
    Case("gp-restarts-zero", _gp(num_restarts=0), ": strategy.options.num_restarts: Input should be greater than or equal to 1"),
    Case("gp-timeout-string", _gp(timeout_sec="60"), ": strategy.options.timeout_sec: Input should be a valid number"),
    Case("gp-objectives-string", _gp(objectives="f"), ": strategy.options.objectives: 'str' instances are not allowed"),
    Case("sobol-option", {"strategy": {"name": "sobol", "options": {"speed": 3}}}, ": strategy.options.speed: unknown option; known: none"),
    Case("random-option", {"strategy": {"name": "random", "options": {"seed": 3}}}, ": strategy.options.seed: unknown option"),
    Case("listed-outside", {"strategy": {"name": "listed", "options": {"designs": [{"x1": 9, "x2": 0}]}}},
         ": strategy.options.designs[0].x1: 9 lies outside [-5, 5]"),
    Case("strategy-unknown", {"strategy": {"name": "oracle"}}, ": strategy.name: unknown strategy 'oracle'"),
    Case("strategy-options-list", {"strategy": {"name": "wugo", "options": [1]}}, ": strategy.options: Input should be a valid dictionary"),
    Case("initial-design-unknown", {"strategy": {"name": "sobol", "initial_design": "halton"}}, ": strategy.initial_design: Input should be"),
]


def _write(tmp_path: Path, case: Case) -> Path:
    folder = tmp_path / "study"
    folder.mkdir()
    for name, text in case.files.items():
        (folder / name).write_text(text.replace("{dir}", str(folder)))
    path = folder / "study.yaml"
    if isinstance(case.study, bytes):
        path.write_bytes(case.study)
    elif isinstance(case.study, str):
        path.write_text(case.study)
    else:
        text = yaml.safe_dump(base_study(**case.study), sort_keys=False)
        path.write_text(text.replace("{dir}", str(folder)))
    return path


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from a directory that is not the study's; restore sys.path and drop the cases' modules after."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield cwd
    for name in set(sys.modules) - before:
        if name.endswith("_sim"):
            del sys.modules[name]


def _check_one_line(err: str, path: Path, expect: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith(f"error: {path}"), err
    assert expect in lines[0], err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line(case: Case, tmp_path: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, case)
    out = tmp_path / "out"
    rc = main(["run", str(path), "--output", str(out), "-q"])
    err = capsys.readouterr().err
    assert rc == 2, err
    _check_one_line(err, path, expect=case.expect)
    assert not out.exists()  # nothing written: fixing the study and re-running works
    assert sorted(p.name for p in elsewhere.iterdir()) == []


def test_case_count() -> None:
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


# -- paths that are not a readable study file -----------------------------------------------------
def test_directory_missing_file_and_oversized(tmp_path: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from optimizer.study import MAX_STUDY_BYTES

    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(MAX_STUDY_BYTES + 1)  # sparse: no 10 MiB written
    for path, expect in [(tmp_path, ": is a directory, not a study file"), (tmp_path / "nope.yaml", ": file not found"),
                         (big, ": larger than 10 MiB: not a study file")]:
        rc = main(["run", str(path), "--output", str(tmp_path / "out"), "-q"])
        err = capsys.readouterr().err
        assert rc == 2
        _check_one_line(err, path, expect)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_unreadable_study(tmp_path: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(GOOD_YAML)
    path.chmod(0)
    try:
        rc = main(["run", str(path), "--output", str(tmp_path / "out"), "-q"])
    finally:
        path.chmod(0o644)
    err = capsys.readouterr().err
    assert rc == 2
    _check_one_line(err, path, ": cannot read: Permission denied")


# -- the same through a real process: nothing but the line reaches stderr -------------------------
SUBPROCESS_CASES = ["nesting-20000-lists", "module-syntax-error"]


def test_bad_input_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    runs = []
    for case in [c for c in CASES if c.id in SUBPROCESS_CASES]:  # started together: each pays the imports
        root = tmp_path / case.id
        root.mkdir()
        path, cwd = _write(root, case), root / "cwd"
        cwd.mkdir()
        proc = subprocess.Popen([sys.executable, "-m", "optimizer.cli", "run", str(path), "--output", str(root / "out"), "-q"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
        runs.append((case, path, root, proc))
    for case, path, root, proc in runs:
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 2, (case.id, stderr)
        _check_one_line(stderr, path, case.expect)
        assert stdout == "" and not (root / "out").exists()
    assert len(runs) == len(SUBPROCESS_CASES)


# -- a module beside the study, or in the current directory, is found --------------------------------
MYSIM = "import numpy as np\n\ndef f(params, n, seed, scale=1.0):\n" \
        "    return scale * params['x1'] ** 2 + np.random.default_rng(seed).standard_normal(n)\n"


@pytest.mark.parametrize("where", ["beside-study", "cwd"])
def test_user_module_beside_study_or_in_cwd(where: str, tmp_path: Path, elsewhere: Path) -> None:
    from optimizer.campaign import Campaign

    name = f"mysim_{where.replace('-', '_')}_sim"
    data = base_study(simulator={"name": f"{name}:f", "samples_per_call": 20, "options": {"scale": 2.0}},
                      budget={"calls": 3, "initial_design": 2})
    folder = tmp_path / "study"
    folder.mkdir()
    (folder if where == "beside-study" else elsewhere).joinpath(f"{name}.py").write_text(MYSIM)
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["run", str(path), "--output", str(tmp_path / "out"), "-q"]) == 0
    recs = Campaign.open(tmp_path / "out").records()
    assert len(recs) == 3 and all(r.status == "completed" for r in recs.values())
    assert sys.path[:2] == [str(folder), str(elsewhere)]  # the study's folder first, then the cwd


# -- what is valid stays accepted ----------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted((ROOT / "studies").rglob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_studies_pass_every_load_check(path: Path) -> None:
    import warnings

    from optimizer.campaign import prepare
    from optimizer.study import load_study

    study, _ = load_study(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no initial-design fallback either
        prepare(study, str(path))


@pytest.mark.parametrize("strategy", [
    {"name": "wugo", "options": {"preset": "default", "surrogate": "mdn", "surrogate_options": {"steps": 10, "lr": 1e-3},
                                 "distance": "w2", "kappa": 1, "acquisition": "refine", "candidates": 64, "generated": 32,
                                 "top_k": 2, "radii": [0.1, 0.01], "perturbations": 4, "common_random_numbers": False,
                                 "objective": "f", "target": -1.0, "plateau": 5, "plateau_tol": 0.0,
                                 "min_distance": 1e-6, "chunk": 128, "projections": 8}},
    {"name": "wugo", "options": {"preset": "wugo-paper", "surrogate_options": {"preset": "fast", "steps": 10}}},
    {"name": "gp", "options": {"objectives": ["f"], "acquisition": "ucb", "beta": 1.5, "noise": "inferred",
                               "num_restarts": 2, "raw_samples": 32, "maxiter": 10, "mc_samples": 64, "timeout_sec": None}},
    {"name": "listed", "options": {"designs": [{"x1": 0, "x2": 1.5}]}},
    {"name": "random", "initial_design": "olhs"},
], ids=["wugo-every-option", "wugo-paper", "gp-every-option", "listed", "random"])
def test_valid_strategy_options_accepted(strategy: dict[str, Any], tmp_path: Path) -> None:
    from optimizer.campaign import prepare
    from optimizer.study import validate_study

    study = validate_study(base_study(strategy=strategy, budget={"calls": 6, "initial_design": 4}))
    prepare(study, str(tmp_path / "study.yaml"))


def test_yaml_numbers_with_exponents_are_numbers(tmp_path: Path) -> None:
    """PyYAML reads `1e3` as a string (YAML 1.1); a strict study reads it as the number it means."""
    from optimizer.study import load_study

    path = tmp_path / "study.yaml"
    path.write_text(GOOD_YAML.replace("high: 5", "high: 1e3", 1).replace("low: -5", "low: -2E-1", 1))
    study, _ = load_study(path)
    assert study.parameters["x1"].low == -0.2 and study.parameters["x1"].high == 1000.0
