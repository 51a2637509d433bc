"""The surrogate as a fast simulator: generated samples at a design, with how far they can be trusted.

``optimize sample DIR --at x1=0.3,x2=2 -n 10000`` fits (or reuses) the campaign's generative surrogate,
draws ``n`` output samples at the design and writes them, beside the held-out check: the W1 between
generated and simulated samples at stored calls left out of a refit, against the noise floor and the W1
to the nearest stored call (see :func:`optimizer.diagnostics.held_out`). Nothing is written to the
campaign directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer.errors import CampaignError, DetoptError

if TYPE_CHECKING:
    from optimizer.records import CampaignView
    from optimizer.study import ParamValue, StudyConfig


@dataclass
class Generated:
    """``samples [n, k]`` generated at ``params``, their output names, and the held-out check's rows
    (``call``, ``w1``, ``w1_split`` noise floor, ``w1_nearest``) of the surrogate that made them."""

    params: dict[str, ParamValue]
    outputs: list[str]
    samples: np.ndarray
    held_out: list[dict[str, float]]
    model: str


def parse_design(text: str, study: StudyConfig) -> dict[str, ParamValue]:
    """``x1=0.3,x2=2,absorber=W`` → physical parameters, every active study parameter given once and inside its
    bounds (a categorical one as one of its choices; an inactive conditional one may be left out)."""
    from optimizer.study import is_active

    out: dict[str, ParamValue] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in study.parameters:
            raise DetoptError(f"--at: '{part}' is not NAME=VALUE for a study parameter ({', '.join(study.parameters)})")
        p = study.parameters[name]
        v: ParamValue
        if p.choices is not None:  # a name as written, or the number among numeric choices
            v = next((c for c in p.choices if str(c) == value.strip() or (not isinstance(c, str) and _number(value) == c)),
                     value.strip())
        else:
            v = _number(value)
            if v is None:
                raise DetoptError(f"--at: {name}: '{value.strip()}' is not a number")
        problem = p.problem(v)
        if problem:
            raise DetoptError(f"--at: {name}: {problem}")
        out[name] = v
    for name in [n for n in out if not is_active(study.parameters, n, out)]:
        out[name] = None  # a value for an inactive parameter means nothing to the simulator
    missing = [n for n in study.parameters if n not in out and is_active(study.parameters, n, out)]
    if missing:
        raise DetoptError(f"--at: missing {', '.join(missing)} (give every parameter: {', '.join(study.parameters)})")
    return out


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def generate(campaign: CampaignView, params: dict[str, ParamValue], n: int, seed: int = 0, check_calls: int = 4) -> Generated:
    """``n`` samples of the campaign's surrogate at ``params``, with its held-out check."""
    import torch

    from optimizer.diagnostics import held_out, one_thread, report_model

    study = campaign.study()
    model = report_model(study, campaign.records(), campaign.storage)
    if model is None:
        raise CampaignError(f"{campaign.root}: the surrogate needs at least two completed calls with samples")
    space = model.space
    u = space.to_unit(space.from_params(params))
    with one_thread():
        ys = model.strategy.surrogate.sample(torch.as_tensor(u[None], dtype=torch.float32), n,
                                             generator=torch.Generator().manual_seed(seed))[0]
        checks = held_out(model, study, calls=check_calls)
    rows = [{"call": h.call_id, "w1": h.w1, "w1_split": h.w1_split, "w1_nearest": h.w1_nearest} for h in checks]
    return Generated(space.to_params(space.from_unit(u)), list(model.strategy.outputs),
                     ys.detach().cpu().numpy().astype(np.float64), rows, model.origin)


def check_output(path: Path) -> None:
    """Refuse an output path :func:`write` cannot write, before any model is fitted."""
    if path.suffix not in (".npy", ".csv"):
        raise DetoptError(f"--output: {path}: use a .npy or .csv file")
    if not path.parent.is_dir():
        raise DetoptError(f"--output: {path.parent}: no such folder")
    if path.is_dir():
        raise DetoptError(f"--output: {path}: is a folder")


def write(gen: Generated, path: Path) -> Path:
    """``.npy`` (the ``[n, k]`` array) or ``.csv`` (a header of output names)."""
    check_output(path)
    if path.suffix == ".npy":
        np.save(path, gen.samples)
    else:
        np.savetxt(path, gen.samples, delimiter=",", header=",".join(gen.outputs), comments="")
    return path
