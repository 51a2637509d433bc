"""One-hot inputs for categorical parameters (``surrogates.encoding``) and WU-GO's ``encoding: one_hot``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from optimizer.testing import SurrogateConformance
from surrogates.encoding import OneHot, encoded_dim, one_hot
from surrogates.mdn import MDN
from test_mixed import ABSORBERS, FAST_OPTIONS, _run, mixed_study

#: A range coordinate first (the conformance suite moves the data with θ₁), then a categorical one of 3 choices.
CHOICES = [0, 3]


class TestOneHotConformance(SurrogateConformance):
    """The whole surrogate suite through the wrapper (the suite's second coordinate becomes 3 indicators)."""

    @pytest.fixture
    def make_surrogate(self):
        return lambda dim, k, seed: OneHot(MDN(encoded_dim(CHOICES), k, seed=seed, steps=150, refit_steps=50), CHOICES)


def test_one_hot_marks_each_bin_and_keeps_ranges() -> None:
    theta = torch.tensor([[0.1, 0.0], [0.5, 0.34], [0.9, 1.0]], dtype=torch.float64, requires_grad=True)
    out = one_hot(theta, CHOICES)
    assert out.tolist() == [[0.1, 1, 0, 0], [0.5, 0, 1, 0], [0.9, 0, 0, 1]]
    out[:, 0].sum().backward()  # ranges stay differentiable; an indicator has no slope
    assert theta.grad is not None and theta.grad.tolist() == [[1.0, 0.0]] * 3
    assert encoded_dim([0, 4, 0, 2]) == 8


def test_the_wrapper_forwards_to_its_model() -> None:
    inner = MDN(encoded_dim(CHOICES), 1, seed=0, steps=20, refit_steps=10)
    model = OneHot(inner, CHOICES)
    model.steps = 5  # a training setting set on the wrapper reaches the model (the report's timing probe does this)
    assert inner.steps == 5 and model.C == inner.C and model.fits == 0
    model.fit(torch.rand(6, 2), torch.randn(6, 16, 1))
    assert model.fits == inner.fits == 1
    with pytest.raises(ValueError, match="takes 2 inputs, the encoding gives 4"):
        OneHot(MDN(2, 1), CHOICES)


@pytest.mark.parametrize("options", [{}, {"polish": 3}])
def test_wugo_with_one_hot_inputs_proposes_valid_choices_and_resumes(options: dict, tmp_path: Path) -> None:
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.study import load_study
    from test_campaign import InterruptAfter

    data = mixed_study(strategy={"name": "wugo", "options": {**FAST_OPTIONS["wugo"], "encoding": "one_hot", **options}},
                       budget={"calls": 9, "initial_design": 5}, execution={"backend": "inline", "max_concurrent": 1})
    whole = _run(tmp_path, data, "whole").records()
    assert all(r.status == "completed" for r in whole.values())
    assert all(r.params["absorber"] in ABSORBERS for r in whole.values())
    path = tmp_path / "whole.yaml"
    study, text = load_study(path)
    camp = Campaign.create(tmp_path / "parts", study, text, source=str(path))
    assert run_campaign(camp, study, source=str(path), executor=InterruptAfter(study, k=6, capacity=1)).stopped \
        == "interrupted"
    run_campaign(Campaign.open(camp.root), study, source=str(path))
    assert [r.params for _, r in sorted(camp.records().items())] == [r.params for _, r in sorted(whole.items())]


def test_encoding_is_checked_at_load() -> None:
    from optimizer.strategies.wugo import WUGOStrategy

    with pytest.raises(ValueError, match="strategy.options.encoding: .*'bins' or 'one_hot'"):
        WUGOStrategy.check_options({"encoding": "onehot"})
