"""The batched σ_W kernels against POT and SciPy."""

from __future__ import annotations

import numpy as np
import ot
import pytest
import torch
from scipy.stats import energy_distance

from optimizer.distances import DistributionBank, quantiles


def _sets(seed: int, B: int, n: int, k: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    loc = torch.randn(B, 1, k, generator=g, dtype=torch.float64)
    scale = 0.2 + torch.rand(B, 1, k, generator=g, dtype=torch.float64)
    skew = torch.randn(B, n, k, generator=g, dtype=torch.float64).exp()  # log-normal shapes, not Gaussian
    return loc + scale * skew


def _bank_distances(stored: torch.Tensor, cands: torch.Tensor, distance: str, **options) -> np.ndarray:
    """``[T, n, k]`` stored sets, ``[C, m, k]`` candidates → the bank's ``[C, T]`` distance matrix."""
    bank = DistributionBank(distance, **options)
    for j in range(len(stored)):
        bank.add(j, stored[j])
    return bank.distances(cands).numpy()


def _assert_pairs(D: np.ndarray, ref, rel: float, abs: float = 0.0) -> None:
    for i, j in np.ndindex(*D.shape):
        assert D[i, j] == pytest.approx(ref(i, j), rel=rel, abs=abs), (i, j)


@pytest.mark.parametrize("p", [1, 2])
def test_w_matches_pot_equal_sizes(p: int) -> None:
    c, t = _sets(0, 6, 200), _sets(1, 4, 200)
    D = _bank_distances(t, c, "w1" if p == 1 else "w2", levels=200)
    _assert_pairs(D, lambda i, j: ot.wasserstein_1d(c[i, :, 0].numpy(), t[j, :, 0].numpy(), p=p) ** (1 / p),
                  rel=1e-9, abs=1e-12)


def test_w1_matches_emd2_lp() -> None:
    c, t = _sets(2, 3, 100), _sets(3, 2, 100)
    D = _bank_distances(t, c, "w1", levels=100)
    u = np.full(100, 0.01)
    _assert_pairs(D, lambda i, j: ot.emd2(u, u, ot.dist(c[i].numpy(), t[j].numpy(), metric="euclidean")), rel=1e-7)


def test_unequal_sizes_close_to_pot() -> None:
    c, t = _sets(4, 5, 256), _sets(5, 3, 1000)
    D = _bank_distances(t, c, "w2")  # K = 1000 from the stored sets
    _assert_pairs(D, lambda i, j: ot.wasserstein_1d(c[i, :, 0].numpy(), t[j, :, 0].numpy(), p=2) ** 0.5,
                  rel=0.03, abs=0.01)


def test_energy_matches_scipy() -> None:
    c, t = _sets(6, 8, 1000), _sets(7, 5, 1000)
    # the bank summarises stored sets by K=256 quantiles; compare with scipy on the raw samples
    D = _bank_distances(t, c, "energy", energy_grid=4096)
    _assert_pairs(D, lambda i, j: energy_distance(c[i, :, 0].numpy(), t[j, :, 0].numpy()), rel=0.03, abs=0.01)


def test_energy_grows_like_sqrt_of_shift() -> None:
    g = torch.Generator().manual_seed(0)
    base = 0.1 * torch.randn(1000, 1, generator=g, dtype=torch.float64)
    bank = DistributionBank("energy", energy_grid=8192)
    bank.add(0, base)
    shifted = torch.stack([base + 4.0])
    assert float(bank.distances(shifted)[0, 0]) == pytest.approx(np.sqrt(2 * 4.0), rel=0.02)  # vs W = 4


def test_sliced_matches_pot_with_same_projections() -> None:
    c, t = _sets(8, 3, 300, k=3), _sets(9, 2, 300, k=3)
    bank = DistributionBank("w2", k=3, levels=300, projections=50, seed=4)
    for j in range(2):
        bank.add(j, t[j])
    D = bank.distances(c).numpy()
    proj = bank.directions.numpy().T  # [k, L]
    for i in range(3):
        for j in range(2):
            ref = ot.sliced_wasserstein_distance(c[i].numpy(), t[j].numpy(), projections=proj, p=2)
            assert D[i, j] == pytest.approx(ref, rel=1e-6)


def test_min_distance_chunks_and_pseudo_observations() -> None:
    c, t = _sets(10, 50, 64), _sets(11, 7, 64)
    bank = DistributionBank("w2", levels=64)
    for j in range(7):
        bank.add(j, t[j])
    full = bank.distances(c)
    torch.testing.assert_close(bank.min_distance(c, chunk=7), full.min(1).values)
    bank.add(99, c[3, :, :])  # a pseudo-observation collapses σ_W at its own point
    assert float(bank.min_distance(c[3:4])[0]) == pytest.approx(0.0, abs=1e-12)
    bank.remove_after(7)
    assert len(bank) == 7
    torch.testing.assert_close(bank.min_distance(c), full.min(1).values)


def test_quantiles_identity_and_interpolation() -> None:
    x = torch.tensor([[3.0, 1.0, 2.0, 4.0]], dtype=torch.float64)
    assert quantiles(x, 4).tolist() == [[1.0, 2.0, 3.0, 4.0]]
    assert quantiles(x, 2).tolist() == [[1.5, 3.5]]  # n > K: the mean of Q over each bin [0, ½), [½, 1)
    assert quantiles(x, 8).tolist() == [[1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]]


def test_levels_capped_and_chunks_bounded_for_large_reference() -> None:
    """A 20,000-sample stored call with 32 projections: K is capped and a chunk fits the memory budget."""
    from optimizer.distances import _TEMPORARIES, CHUNK_MEMORY_BYTES, MAX_LEVELS

    g = torch.Generator().manual_seed(12)
    ref = torch.randn(20000, 4, generator=g, dtype=torch.float64)
    for distance in ("w2", "energy"):
        bank = DistributionBank(distance, k=4, projections=32, seed=1)
        bank.add(0, ref)
        assert bank.K == MAX_LEVELS  # was 20,000: 2048 × 32 × 20,000 × 8 bytes ≈ 10 GiB per chunk
        chunk = bank.chunk_size(256, 2048)
        width = max(256, bank.K, bank.grid if distance == "energy" else 0)
        assert 1 <= chunk <= 2048 and chunk * _TEMPORARIES * 32 * width * 8 <= CHUNK_MEMORY_BYTES
        assert chunk < 2048  # a 2048-candidate chunk would need more than the budget


def test_capped_levels_agree_with_exact_w2() -> None:
    """W2 between 256-sample candidates and 20,000-sample stored sets with K = MAX_LEVELS vs POT's exact value."""
    c, t = _sets(13, 4, 256), _sets(14, 2, 20000)
    D = _bank_distances(t, c, "w2")
    _assert_pairs(D, lambda i, j: ot.wasserstein_1d(c[i, :, 0].numpy(), t[j, :, 0].numpy(), p=2) ** 0.5,
                  rel=1e-6)  # exact: the candidates are constant on the bins, the within-bin variance is added


@pytest.mark.parametrize("distance", ["w1", "w2", "energy"])
@pytest.mark.parametrize("k", [1, 2])
def test_disagreement_is_the_mean_pairwise_distance_per_candidate(distance: str, k: int) -> None:
    """``disagreement([M, C, n, k])[c]`` = mean over model pairs a < b of D(model a at c, model b at c), the same
    distance and projections as σ_W; chunking changes nothing."""
    M, C, n = 3, 5, 256
    ys = torch.stack([_sets(20 + a, C, n, k) for a in range(M)])
    bank = DistributionBank(distance, k=k, levels=n, projections=8, energy_grid=4096, seed=4)
    got = bank.disagreement(ys)
    assert got.shape == (C,)
    torch.testing.assert_close(bank.disagreement(ys, chunk=2), got)
    for c in range(C):
        pairs = []
        for a in range(M):
            for b in range(a + 1, M):
                ref = DistributionBank(distance, k=k, levels=n, projections=8, energy_grid=4096, seed=4)
                ref.add(0, ys[b, c])
                pairs.append(float(ref.distances(ys[a, c][None])[0, 0]))
        # energy: each pair on its own response grid (the bank's matrix shares one), so a Riemann-sum difference
        rel = 0.02 if distance == "energy" else 1e-9
        assert float(got[c]) == pytest.approx(np.mean(pairs), rel=rel), c
    if distance == "energy" and k == 1:  # and against SciPy on the raw samples
        for c in range(C):
            ref = np.mean([energy_distance(ys[a, c, :, 0].numpy(), ys[b, c, :, 0].numpy())
                           for a in range(M) for b in range(a + 1, M)])
            assert float(got[c]) == pytest.approx(ref, rel=0.03, abs=0.01)
    with pytest.raises(ValueError, match="at least 2"):
        bank.disagreement(ys[:1])
