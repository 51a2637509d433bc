"""Run an external program per call (a compiled Geant4/FairShip executable, a script).

Each call runs in a fresh working directory. θ reaches the program as command-line
arguments (placeholders in the argument list), environment variables
(``DETOPT_PARAM_<NAME>``, ``DETOPT_N``, ``DETOPT_SEED``, ``DETOPT_WORKDIR``, plus any
``env`` entries) and/or an input file rendered from a template. The program writes its
samples to ``output`` in the working directory: ``.npy``, ``.npz`` (``output_key``),
``.csv`` (header row of output names) or ``.json`` (a list of rows, or a mapping
``output_key`` → rows); ROOT files through uproot when it is installed (``output_key``
= tree name). Arguments are passed as a list, never through a shell. stdout and stderr
are kept in the working directory and their tails go into the call's metadata or error.

Placeholders: ``{name}`` for each parameter, ``{n}``, ``{seed}``, ``{workdir}``, ``{input}``.
Arguments that name an existing file relative to the current directory are passed as absolute
paths, since the program runs in its per-call directory.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simulators.base import SimulationResult, Simulator, SimulatorOptionError, TransientError

#: Characters of the program's stderr kept in an error message (the end, where the error usually is).
TAIL = 2000
#: Characters of its stdout kept in each call's metadata (the journal stores them for every call).
STDOUT_TAIL = 500
#: Placeholder names the simulator fills itself; a study parameter of one of these names would be shadowed.
RESERVED = ("n", "seed", "workdir", "input")
READERS = (".npy", ".npz", ".csv", ".json", ".root")


def _refuse(option: str, message: str) -> SimulatorOptionError:
    return SimulatorOptionError(f"simulator.options.{option}", message)


def _string_list(option: str, value: Any, *, empty: bool = True) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(a, str) for a in value):
        raise _refuse(option, f"must be a list of strings, got {value!r:.60}")
    if not empty and not value:
        raise _refuse(option, "must not be empty")
    return list(value)


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-TAIL:]
    except OSError:
        return ""


class CommandSimulator(Simulator):
    """Args:
        command: argument list, e.g. ``["./shield_sim", "--gap", "{gap}", "--events", "{n}", "--seed", "{seed}"]``.
        output: file the program writes, relative to the working directory.
        outputs: names of the sample columns.
        env: extra environment variables (values may use placeholders).
        input_template: path of a text template rendered into ``input_name`` (``str.format`` placeholders).
        output_key: array name in a ``.npz``, key in a ``.json`` mapping, or tree name in a ROOT file.
        timeout: seconds before the program is killed and the call fails.
        workdir: folder under which per-call working directories are made (default: the system temp dir).
        keep: keep the working directory after a successful call (failed calls always keep theirs).
        cwd_files: files copied (symlinked) into each working directory (geometry, physics tables).
        transient_exit_codes: exit codes meaning "try again later" (default 75, EX_TEMPFAIL): the call fails
            with kind ``transient`` and is re-run up to ``execution.retries`` times.
    """

    fixed_sample_count = False

    def __init__(self, command: Sequence[str], output: str, outputs: Sequence[str] = ("y",),
                 env: Mapping[str, str] | None = None, input_template: str | None = None, input_name: str = "input.txt",
                 output_key: str | None = None, timeout: float | None = None, workdir: str | None = None,
                 keep: bool = False, cwd_files: Sequence[str] = (), transient_exit_codes: Sequence[int] = (75,)) -> None:
        if isinstance(command, str):
            raise _refuse("command", "must be a list of strings (the program, then each argument), e.g. "
                                     "[python3, prog.py]: it is never run through a shell, so one string is refused")
        self.command = _string_list("command", command, empty=False)
        if not self.command[0]:
            raise _refuse("command[0]", "the program name is empty")
        if not isinstance(output, str) or not output:
            raise _refuse("output", f"must be a file name, got {output!r:.60}")
        if Path(output).suffix.lower() not in READERS:
            raise _refuse("output", f"cannot read '{Path(output).suffix}' files: use {', '.join(READERS)}")
        if Path(output).suffix.lower() == ".root" and importlib.util.find_spec("uproot") is None:
            raise _refuse("output", "reading ROOT output needs uproot: pip install uproot")
        self.output = output
        self.outputs = tuple(_string_list("outputs", outputs, empty=False))
        if len(set(self.outputs)) != len(self.outputs):
            raise _refuse("outputs", f"names repeat: {list(self.outputs)}")
        if env is not None and not isinstance(env, Mapping):
            raise _refuse("env", "must be a mapping of variable names to values")
        for key, value in (env or {}).items():
            if not isinstance(key, str) or not key or "=" in key:
                raise _refuse("env", f"{key!r:.40} is not an environment variable name")
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise _refuse(f"env.{key}", f"must be a string or a number, got {value!r:.60}")
        self.env = dict(env or {})
        self.template = None
        if input_template is not None:
            if not isinstance(input_template, str):
                raise _refuse("input_template", f"must be a file path, got {input_template!r:.60}")
            try:
                self.template = Path(input_template).read_text()
            except (OSError, UnicodeDecodeError) as err:
                raise _refuse("input_template", f"cannot read {input_template}: "
                                                f"{getattr(err, 'strerror', None) or err}") from None
        if not isinstance(input_name, str) or not input_name or Path(input_name).name != input_name:
            raise _refuse("input_name", f"must be a plain file name, got {input_name!r:.60}")
        if output_key is not None and not isinstance(output_key, str):
            raise _refuse("output_key", f"must be a string, got {output_key!r:.60}")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not math.isfinite(timeout) or timeout <= 0):
            raise _refuse("timeout", f"must be a number of seconds > 0, got {timeout!r:.60}")
        if workdir is not None and not isinstance(workdir, str):
            raise _refuse("workdir", f"must be a folder path, got {workdir!r:.60}")
        if not isinstance(keep, bool):
            raise _refuse("keep", f"must be true or false, got {keep!r:.60}")
        self.input_name, self.output_key, self.timeout = input_name, output_key, timeout
        self.workdir, self.keep = workdir, keep
        self.cwd_files = [Path(f).resolve() for f in _string_list("cwd_files", cwd_files)]
        for i, f in enumerate(self.cwd_files):
            if not f.exists():
                raise _refuse(f"cwd_files[{i}]", f"{f} does not exist")
        if isinstance(transient_exit_codes, (str, bytes)) or not isinstance(transient_exit_codes, Sequence) or \
                not all(isinstance(c, int) and not isinstance(c, bool) for c in transient_exit_codes):
            raise _refuse("transient_exit_codes", f"must be a list of integers, got {transient_exit_codes!r:.60}")
        self.transient_exit_codes = {int(c) for c in transient_exit_codes}

    def check_parameters(self, example: Mapping[str, float | str]) -> None:
        """Refuse parameters named like the simulator's own placeholders, and placeholders that name
        nothing: every call would otherwise fail (or silently use another value)."""
        for name in example:
            if name in RESERVED:
                raise SimulatorOptionError(
                    f"parameters.{name}", f"the command simulator fills {{{name}}} itself ({', '.join(RESERVED)} "
                                          "are reserved): rename the parameter")
        upper: dict[str, str] = {}
        for name in example:
            other = upper.setdefault(name.upper(), name)
            if other != name:
                raise SimulatorOptionError(
                    f"parameters.{name}", f"'{name}' and '{other}' both become DETOPT_PARAM_{name.upper()}")
        fields: dict[str, Any] = {**example, "n": 1, "seed": 0, "workdir": "w", "input": "w/" + self.input_name}
        texts = [(f"command[{i}]", a) for i, a in enumerate(self.command)]
        texts += [(f"env.{k}", str(v)) for k, v in self.env.items()]
        if self.template is not None:
            texts.append(("input_template", self.template))
        for option, text in texts:
            try:
                text.format(**fields)
            except KeyError as err:
                raise _refuse(option, f"placeholder {{{err.args[0]}}} names no parameter "
                                      f"(known: {', '.join([*example, *RESERVED])}; write {{{{ }}}} for a literal brace)") \
                    from None
            except (ValueError, IndexError, AttributeError, TypeError) as err:
                raise _refuse(option, f"bad placeholder: {err} (write {{{{ }}}} for a literal brace)") from None

    def simulate(self, params: Mapping[str, float | str], n: int, seed: int) -> SimulationResult:
        """Run the command in a fresh working folder (placeholders filled from θ, ``n`` and ``seed``) and read its output file.

        Raises:
            TransientError: the program exited with one of ``transient_exit_codes``.
            TimeoutError: it ran longer than ``timeout``.
        """
        wd = Path(tempfile.mkdtemp(prefix=f"detopt-{seed}-", dir=self.workdir))
        for f in self.cwd_files:
            (wd / f.name).symlink_to(f)
        fields: dict[str, Any] = {**params, "n": n, "seed": seed, "workdir": str(wd), "input": str(wd / self.input_name)}
        if self.template is not None:
            (wd / self.input_name).write_text(self.template.format(**fields))
        # The program runs in its own directory: arguments naming files of the campaign's working
        # directory (the driver's, or Ray's working_dir on a cluster) are made absolute.
        here = Path.cwd()
        argv = [str(here / a) if a and not os.path.isabs(a) and (here / a).exists() else a
                for a in (arg.format(**fields) for arg in self.command)]
        env = {**os.environ, "DETOPT_N": str(n), "DETOPT_SEED": str(seed), "DETOPT_WORKDIR": str(wd)}
        env.update({f"DETOPT_PARAM_{k.upper()}": repr(v) for k, v in params.items()})
        env.update({k: str(v).format(**fields) for k, v in self.env.items()})
        out_path, err_path = wd / "stdout.txt", wd / "stderr.txt"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.run(argv, cwd=wd, env=env, stdout=out, stderr=err, timeout=self.timeout, check=False)
            except subprocess.TimeoutExpired:
                raise TimeoutError(f"{argv[0]} ran over {self.timeout:g} s (workdir {wd})") from None
            except OSError as e:
                raise RuntimeError(f"cannot start {argv[0]}: {e}") from None
        if proc.returncode != 0:
            kind = TransientError if proc.returncode in self.transient_exit_codes else RuntimeError
            raise kind(f"{argv[0]} exited with code {proc.returncode} (workdir {wd}); stderr:\n{_tail(err_path)}")
        samples = self._read(wd / self.output)
        meta = {"workdir": str(wd) if self.keep else None, "stdout_tail": _tail(out_path)[-STDOUT_TAIL:]}
        if not self.keep:
            for p in sorted(wd.rglob("*"), reverse=True):
                p.unlink() if not p.is_dir() or p.is_symlink() else p.rmdir()
            wd.rmdir()
        return SimulationResult(samples, meta)

    def _read(self, path: Path) -> np.ndarray:
        if not path.exists():
            raise FileNotFoundError(f"the program did not write {path.name} (in {path.parent})")
        suffix = path.suffix.lower()
        if suffix == ".npy":
            return np.load(path)
        if suffix == ".npz":
            with np.load(path) as z:
                return z[self.output_key or z.files[0]]
        if suffix == ".csv":
            data = np.genfromtxt(path, delimiter=",", names=True)
            missing = set(self.outputs) - set(data.dtype.names or ())
            if missing:
                raise ValueError(f"{path.name} lacks columns {sorted(missing)}")
            return np.stack([np.atleast_1d(data[c]) for c in self.outputs], axis=1)
        if suffix == ".json":
            obj = json.loads(path.read_text())
            return np.asarray(obj[self.output_key] if self.output_key else obj, dtype=float)
        if suffix == ".root":
            try:
                import uproot
            except ImportError:
                raise RuntimeError("reading ROOT output needs uproot: pip install uproot") from None
            with uproot.open(path) as f:
                tree = f[self.output_key or "events"]
                return np.stack([np.asarray(tree[c].array(library="np")) for c in self.outputs], axis=1)
        raise ValueError(f"cannot read {path.name}: use .npy, .npz, .csv, .json or .root")
