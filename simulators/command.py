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

import json
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simulators.base import SimulationResult, Simulator, TransientError

TAIL = 2000


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
        if not command or not all(isinstance(a, str) for a in command):
            raise ValueError("command must be a non-empty list of strings")
        self.command, self.output, self.outputs = list(command), output, tuple(outputs)
        self.env = dict(env or {})
        self.template = Path(input_template).read_text() if input_template else None
        self.input_name, self.output_key, self.timeout = input_name, output_key, timeout
        self.workdir, self.keep = workdir, keep
        self.cwd_files = [Path(f).resolve() for f in cwd_files]
        self.transient_exit_codes = {int(c) for c in transient_exit_codes}

    def simulate(self, params: Mapping[str, float], n: int, seed: int) -> SimulationResult:
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
        meta = {"workdir": str(wd) if self.keep else None, "stdout_tail": _tail(out_path)[-500:]}
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
