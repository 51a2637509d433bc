"""WU-GO's gradient polish (``polish: steps``) and the differentiable mixture helpers it stands on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import energy_distance, wasserstein_distance

from conftest import FAST_WUGO, wugo_study
from optimizer.space import SearchSpace
from optimizer.strategies.mixture import weighted_distance
from optimizer.strategies.wugo import WUGOStrategy
from optimizer.testing import StrategyConformance

FAST = FAST_WUGO
POLISH = {**FAST, "polish": 10}


class TestWUGOPolishConformance(StrategyConformance):
    """The whole strategy suite (proposals in the cube, batches, pending points, resume) with the polish on."""

    @pytest.fixture
    def make_strategy(self):
        return lambda space, study, seed: WUGOStrategy(space, study, seed, **POLISH)

    @pytest.fixture
    def study(self):
        return wugo_study()


@pytest.mark.parametrize("distance", ["energy", "w1"])
def test_weighted_distance_is_scipys_for_weighted_samples(distance: str) -> None:
    """Exact for step CDFs: SciPy's weighted energy distance and W1 between the same two sets."""
    rng = np.random.default_rng(0)
    atoms, w = rng.normal(size=40), rng.random(40)
    w = w / w.sum()
    stored = [np.sort(rng.normal(0.3 * t, 1 + 0.2 * t, size=25)) for t in range(3)]
    got = weighted_distance(torch.as_tensor(atoms)[None, :, None], torch.as_tensor(w)[None],
                            torch.as_tensor(np.stack(stored))[:, None, :], None, distance)[0].numpy()
    ref = energy_distance if distance == "energy" else wasserstein_distance
    want = [ref(atoms, s, u_weights=w) for s in stored]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_weighted_distance_has_the_gradient_of_finite_differences() -> None:
    """In atoms and weights, away from ties (two outputs: through the projections)."""
    g = torch.Generator().manual_seed(1)
    atoms = torch.randn(1, 12, 2, generator=g, dtype=torch.float64, requires_grad=True)
    logits = torch.randn(1, 12, generator=g, dtype=torch.float64, requires_grad=True)
    stored = torch.sort(torch.randn(2, 3, 10, generator=g, dtype=torch.float64), dim=-1).values
    dirs = torch.nn.functional.normalize(torch.randn(3, 2, generator=g, dtype=torch.float64), dim=1)
    assert torch.autograd.gradcheck(
        lambda a, lg: weighted_distance(a, torch.softmax(lg, -1), stored, dirs, "energy"), (atoms, logits))


def test_weighted_distance_refuses_w2() -> None:
    with pytest.raises(ValueError, match="'energy' and 'w1'"):
        weighted_distance(torch.zeros(1, 2, 1), torch.full((1, 2), 0.5), torch.zeros(1, 1, 2), None, "w2")


@pytest.mark.parametrize(("options", "field", "message"), [
    ({"polish": -1}, "polish", "greater than or equal to 0"),
    ({"polish": 5, "distance": "w2"}, "polish", "needs distance: energy or w1, not 'w2'"),
    ({"polish": 5, "surrogate": "wgan"}, "polish", "needs a surrogate with a mixture"),
    ({"polish": 5, "uncertainty": "both"}, "polish", "needs uncertainty: nearest"),
    ({"polish": 5, "acquisition": "grid"}, "polish", "needs acquisition: refine"),
    ({"polish_starts": 2}, "polish_starts", "needs polish"),
    ({"polish": 0, "polish_lr": 0.1}, "polish_lr", "needs polish"),
    ({"polish": 5, "polish_lr": 0.0}, "polish_lr", "greater than 0"),
])
def test_polish_options_are_checked_at_load(options: dict, field: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"strategy.options.{field}: .*{message}") as err:
        WUGOStrategy.check_options(options)
    assert "\n" not in str(err.value)


def test_polish_is_off_by_default() -> None:
    study = wugo_study()
    assert WUGOStrategy(SearchSpace(study.parameters), study, 0).cfg["polish"] == 0
    assert WUGOStrategy(SearchSpace(study.parameters), study, 0, preset="wugo-paper").cfg["polish"] == 0


def test_polish_descends_its_acquisition_and_the_pick_comes_from_it() -> None:
    """The ask proposes one of the polished points (the twin decides), each no worse under the twin than its start;
    from interior starts the polish lowers the twin acquisition and stays in the cube."""
    study = wugo_study()
    space = SearchSpace(study.parameters)
    strat = WUGOStrategy(space, study, 0, **POLISH)
    history = StrategyConformance.make_history(space, 8)
    seen: dict[str, np.ndarray] = {}
    polish = strat._polish

    def spy(starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seen["starts"] = starts
        seen["points"], seen["values"] = polish(starts)
        return seen["points"], seen["values"]

    strat._polish = spy  # type: ignore[method-assign]
    x = strat.ask(history, np.zeros((0, space.dim)), 1)
    assert len(seen["starts"]) == 4
    assert np.min(np.linalg.norm(seen["points"] - x[0], axis=1)) == 0.0

    def twin(u: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return strat._polish_acquisition(torch.as_tensor(u, dtype=torch.float64)).numpy()

    assert np.all(seen["values"] <= twin(seen["starts"]) + 1e-12)
    starts = np.array([[0.3, 0.4], [0.5, 0.5], [0.6, 0.2]])
    points, values = polish(starts)
    np.testing.assert_allclose(values, twin(points))
    assert np.all(values < twin(starts) - 1e-3)
    assert np.all((points > 0) & (points < 1))
