"""Batched distances between output distributions, for the Wasserstein uncertainty σ_W.

σ_W(θ) = min over stored calls μ of D(G(θ), μ), for thousands of candidates θ at once.

* ``w1``/``w2``: in 1-D, W_p between empirical measures is the L_p distance between
  their quantile functions. Every set is summarised once by its quantile vector on a
  common grid u_k = (k + ½)/K (exact when every set has K samples); then
  W1 = ‖Qc − Qt‖₁/K (``torch.cdist``) and W2² = mean(Qc²) + mean(Qt²) − 2·Qc·Qtᵀ/K (one GEMM).
* ``energy``: SciPy's energy distance, which the WU-GO public code actually uses,
  D_E = √(2 ∫ (F_c − F_t)² dz), with the empirical CDFs evaluated on a shared grid of
  ``energy_grid`` response values (a Riemann sum, so approximate; see tests for the error).
* Outputs with k > 1 columns: sliced Wasserstein with ``projections`` shared random unit
  directions (fixed by a seed): each set's signature is the concatenation of the
  quantile vectors of its projections, and SW_p^p is the mean over projections of
  the 1-D W_p^p, which is again one cdist/GEMM. Energy mode uses the same projections.
  Sliced W is smaller than W in k > 1 dimensions; κ should be set with that in mind.

Stored calls are sorted and summarised once (:class:`DistributionBank` caches them).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Distance = Literal["w1", "w2", "energy"]
DISTANCES = ("w1", "w2", "energy")

# Most quantile levels K per (projected) distribution. Candidates carry a few hundred generated samples, so
# finer levels only resolve the stored calls (up to 20,000 samples each on the shield studies) beyond what any
# candidate can be compared at, while every level costs C·L·8 bytes; the O(1/K) error of 1024 levels is well
# below the sampling noise of 256-sample candidates (see tests/test_distances.py).
MAX_LEVELS = 1024
# Bytes of working memory one chunk of candidates may use in :meth:`DistributionBank.distances`.
CHUNK_MEMORY_BYTES = 256 * 2**20
# Float temporaries per (candidate, projection, sample-or-level) in one chunk: the projections, their sorted
# copy and sort indices (int64), the quantile signature (or, for energy, the grid and its CDF and indices).
_TEMPORARIES = 4


def quantile_levels(K: int, dtype: torch.dtype = torch.float64, device: torch.device | None = None) -> Tensor:
    """The ``[K]`` mid-point quantile levels ``(k + ½) / K``, ``k = 0 … K-1``, at which quantile functions are compared."""
    return (torch.arange(K, dtype=dtype, device=device) + 0.5) / K


def quantiles(samples: Tensor, K: int) -> Tensor:
    """Empirical quantile functions on K levels: ``samples [B, n]`` → ``[B, K]``.

    With ``n ≤ K`` the step function Q(u) = x₍⌊u·n⌋₎ of the sorted samples at levels (k + ½)/K, exactly;
    with ``n == K`` the sorted samples themselves (W between equal-size sets is exact). With ``n > K`` the
    mean of Q over each level's bin [k/K, (k+1)/K) (see :func:`binned_quantiles`).
    """
    return binned_quantiles(samples, K)[0]


def binned_quantiles(samples: Tensor, K: int) -> tuple[Tensor, Tensor]:
    """Quantile summary ``[B, K]`` (as :func:`quantiles`) and the within-bin variance ``[B]`` it leaves out.

    For ``n > K`` the bin means are the best K-step approximation of Q in L2, and
    ∫(Qc − Qt)² = mean_k (c_k − m_k)² + mean_k v_k whenever Qc is constant on the bins (a candidate of
    K/j samples): adding the returned variance makes W2 exact for such candidates, whatever Qt's tails.
    The variance is 0 for ``n ≤ K``.
    """
    s, _ = torch.sort(samples, dim=-1)
    n = s.shape[-1]
    if n == K:
        return s, torch.zeros(s.shape[:-1], dtype=s.dtype, device=s.device)
    if n < K:
        idx = (quantile_levels(K, torch.float64, s.device) * n).floor().long().clamp(max=n - 1)
        return s[..., idx], torch.zeros(s.shape[:-1], dtype=s.dtype, device=s.device)
    # n·∫₀^b Q(u)^p du at the bin edges b = j/K, from cumulative sums of the sorted samples
    pos = torch.arange(K + 1, dtype=torch.float64, device=s.device) * (n / K)
    whole = pos.floor().long().clamp(max=n)
    frac = (pos - whole).to(s.dtype)
    nxt = s[..., whole.clamp(max=n - 1)]

    def bin_means(v: Tensor, v_next: Tensor) -> Tensor:
        csum = torch.cat([torch.zeros_like(v[..., :1]), v.cumsum(-1)], -1)
        integral = csum[..., whole] + frac * v_next
        return (integral[..., 1:] - integral[..., :-1]) * (K / n)

    centre = s[..., n // 2 : n // 2 + 1]  # centred first: E[Q²] − E[Q]² without cancellation
    m = bin_means(s - centre, nxt - centre)
    var = (bin_means((s - centre) ** 2, (nxt - centre) ** 2) - m**2).clamp_min(0).mean(-1)
    return m + centre, var


def project(samples: Tensor, directions: Tensor | None) -> Tensor:
    """``samples [B, n, k]`` → ``[B, L, n]`` projections (``L = 1``, no projection, when k = 1)."""
    if directions is None:
        return samples.transpose(1, 2)
    return torch.einsum("bnk,lk->bln", samples, directions)


def random_directions(k: int, L: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> Tensor | None:
    """``[L, k]`` unit vectors shared by every distance of a campaign; ``None`` for k = 1."""
    if k == 1:
        return None
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(L, k, generator=g, dtype=dtype)
    return d / d.norm(dim=1, keepdim=True)


def signature(samples: Tensor, K: int, directions: Tensor | None) -> Tensor:
    """W-signature: ``[B, n, k]`` → ``[B, L·K]`` concatenated quantile vectors of the projections."""
    p = project(samples, directions)
    B, L, n = p.shape
    return quantiles(p.reshape(B * L, n), K).reshape(B, L * K)


def w_matrix(sig_c: Tensor, sig_t: Tensor, p: int, L: int, var_c: Tensor | None = None,
             var_t: Tensor | None = None) -> Tensor:
    """(Sliced) W_p for every pair: ``[C, L·K]``, ``[T, L·K]`` → ``[C, T]``.

    ``var_c [C]``, ``var_t [T]``: within-bin variances of :func:`binned_quantiles` (W2 only).
    """
    LK = sig_c.shape[1]
    if p == 1:
        return torch.cdist(sig_c, sig_t, p=1) / LK
    sq = (sig_c.pow(2).mean(1, keepdim=True) + sig_t.pow(2).mean(1)[None, :] - 2 * sig_c @ sig_t.T / LK)
    if var_c is not None:
        sq = sq + var_c[:, None]
    if var_t is not None:
        sq = sq + var_t[None, :]
    return sq.clamp_min(0).sqrt()


def cdf_on_grid(samples: Tensor, grid: Tensor) -> Tensor:
    """Empirical CDFs: ``samples [B, L, n]`` (sorted along n) on ``grid [L, G]`` → ``[B, L·G]``."""
    B, L, n = samples.shape
    g = grid.unsqueeze(0).expand(B, L, -1).contiguous()
    return (torch.searchsorted(samples.contiguous(), g, right=True).to(samples.dtype) / n).reshape(B, -1)


def energy_matrix(proj_c: Tensor, proj_t: Tensor, grid_points: int) -> Tensor:
    """Energy distance for every pair: sorted ``[C, L, n]``, ``[T, L, m]`` → ``[C, T]`` (mean over projections)."""
    lo = torch.minimum(proj_c.amin(dim=(0, 2)), proj_t.amin(dim=(0, 2)))
    hi = torch.maximum(proj_c.amax(dim=(0, 2)), proj_t.amax(dim=(0, 2)))
    u = torch.linspace(0, 1, grid_points, dtype=proj_c.dtype, device=proj_c.device)
    grid = lo[:, None] + (hi - lo)[:, None] * u[None, :]  # [L, G]
    dz = ((hi - lo) / (grid_points - 1)).repeat_interleave(grid_points)  # [L·G]
    L = proj_c.shape[1]
    Fc, Ft = cdf_on_grid(proj_c, grid), cdf_on_grid(proj_t, grid)
    sq = (Fc.pow(2) @ dz)[:, None] + (Ft.pow(2) @ dz)[None, :] - 2 * (Fc * dz) @ Ft.T
    return (2 * sq.clamp_min(0) / L).sqrt()


class DistributionBank:
    """Stored output distributions, summarised once, for σ_W queries.

    Args:
        distance: ``w1``, ``w2`` or ``energy``.
        k: output columns.
        levels: K, quantile levels per (projected) distribution; default: the sample count
            of the first stored distribution (exact W when candidates have as many samples), at most
            :data:`MAX_LEVELS`.
        projections: L, random directions for k > 1.
        energy_grid: response grid points for ``energy``.
        seed: fixes the projections.
    """

    def __init__(self, distance: Distance = "w2", k: int = 1, levels: int | None = None, projections: int = 32,
                 energy_grid: int = 1024, seed: int = 0, dtype: torch.dtype = torch.float64) -> None:
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got '{distance}'")
        self.distance, self.k, self.K, self.grid = distance, k, levels, energy_grid
        self.dtype = dtype
        self.directions = random_directions(k, projections, seed, dtype)
        self.L = 1 if self.directions is None else projections
        self.keys: list[int] = []
        self._sig: list[Tensor] = []  # quantile signatures [L·K] (w1/w2)
        self._sorted: list[Tensor] = []  # sorted projections [L, K] (energy)
        self._var: list[Tensor] = []  # within-bin variance [] left out of the signature (w2)

    def __len__(self) -> int:
        return len(self.keys)

    def _summarise(self, samples: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if self.K is None:
            self.K = min(int(samples.shape[1]), MAX_LEVELS)
        p = project(samples.to(self.dtype), self.directions)  # [B, L, n]
        B, L, n = p.shape
        q, var = binned_quantiles(p.reshape(B * L, n), self.K)
        q = q.reshape(B, L, self.K)
        return q.reshape(B, L * self.K), q, var.reshape(B, L).mean(1)

    def add(self, key: int, samples: Tensor) -> None:
        """Store one distribution: ``samples [n, k]`` (its summary is computed now, once)."""
        sig, q, var = self._summarise(samples[None])
        self.keys.append(key)
        self._sig.append(sig[0])
        self._sorted.append(q[0])
        self._var.append(var[0])

    def summaries(self) -> Tensor:
        """The stored distributions' sorted quantile vectors ``[T, L, K]`` (one row of ``L`` projections each)."""
        if not self.keys:
            raise ValueError("the bank is empty")
        return torch.stack(self._sorted)

    def remove_after(self, size: int) -> None:
        """Forget the distributions added after the first ``size`` (pseudo-observations)."""
        del self.keys[size:], self._sig[size:], self._sorted[size:], self._var[size:]

    def chunk_size(self, n: int, chunk: int) -> int:
        """Candidates per chunk for ``n`` samples each: at most ``chunk``, and within :data:`CHUNK_MEMORY_BYTES`."""
        width = max(n, self.K or n, self.grid if self.distance == "energy" else 0)
        per_candidate = _TEMPORARIES * self.L * width * torch.finfo(self.dtype).bits // 8
        return max(1, min(chunk, CHUNK_MEMORY_BYTES // per_candidate))

    def distances(self, samples: Tensor, chunk: int = 4096) -> Tensor:
        """Distance from each candidate to each stored distribution: ``samples [C, n, k]`` → ``[C, T]``.

        Candidates go in chunks of at most ``chunk``, fewer where :meth:`chunk_size` says memory requires.
        """
        if not self.keys:
            raise ValueError("the bank is empty")
        out = []
        chunk = self.chunk_size(samples.shape[1], chunk)
        for start in range(0, samples.shape[0], chunk):
            sig, q, var = self._summarise(samples[start : start + chunk])
            if self.distance == "energy":
                out.append(energy_matrix(q, torch.stack(self._sorted), self.grid))
            elif self.distance == "w1":
                out.append(w_matrix(sig, torch.stack(self._sig), 1, self.L))
            else:
                out.append(w_matrix(sig, torch.stack(self._sig), 2, self.L, var, torch.stack(self._var)))
        return torch.cat(out)

    def min_distance(self, samples: Tensor, chunk: int = 4096) -> Tensor:
        """σ_W: ``samples [C, n, k]`` → ``[C]`` distance to the nearest stored distribution."""
        return self.distances(samples, chunk).min(dim=1).values

    def disagreement(self, samples: Tensor, chunk: int = 4096) -> Tensor:
        """Mean pairwise distance between M models' outputs at each candidate: ``samples [M, C, n, k]`` → ``[C]``.

        The bank's distance and projections (so it is on σ_W's footing); nothing is stored. Candidate ``c`` of
        model ``a`` is compared with candidate ``c`` of model ``b`` only, for every pair ``a < b``.
        """
        M, C, n, _ = samples.shape
        if M < 2:
            raise ValueError("a disagreement needs at least 2 models")
        if self.K is None:
            self.K = min(int(n), MAX_LEVELS)
        out = []
        chunk = max(1, self.chunk_size(n, chunk) // M)
        pairs = [(a, b) for a in range(M) for b in range(a + 1, M)]
        for start in range(0, C, chunk):
            part = samples[:, start : start + chunk].reshape(-1, *samples.shape[2:])  # [M·c, n, k]
            sig, q, var = self._summarise(part)
            c = part.shape[0] // M
            if self.distance == "energy":
                q = q.reshape(M, c, self.L, self.K)
                d = torch.stack([_energy_pairs(q[a], q[b], self.grid) for a, b in pairs])
            else:
                sig, var = sig.reshape(M, c, -1), var.reshape(M, c)
                if self.distance == "w1":
                    d = torch.stack([(sig[a] - sig[b]).abs().mean(1) for a, b in pairs])
                else:  # W2² of bin means plus both within-bin variances, as in w_matrix
                    d = torch.stack([((sig[a] - sig[b]).pow(2).mean(1) + var[a] + var[b]).sqrt() for a, b in pairs])
            out.append(d.mean(0))
        return torch.cat(out)


def _energy_pairs(proj_a: Tensor, proj_b: Tensor, grid_points: int) -> Tensor:
    """Energy distance between row ``c`` of sorted ``proj_a [C, L, n]`` and row ``c`` of ``proj_b`` → ``[C]``
    (each pair on its own response grid, mean over projections as in :func:`energy_matrix`)."""
    both = torch.cat([proj_a, proj_b], -1)
    lo, hi = both.amin(-1), both.amax(-1)  # [C, L]
    u = torch.linspace(0, 1, grid_points, dtype=proj_a.dtype, device=proj_a.device)
    grid = lo[..., None] + (hi - lo)[..., None] * u  # [C, L, G]
    dz = (hi - lo) / (grid_points - 1)  # [C, L]
    n_a, n_b = proj_a.shape[-1], proj_b.shape[-1]
    Fa = torch.searchsorted(proj_a.contiguous(), grid, right=True).to(proj_a.dtype) / n_a
    Fb = torch.searchsorted(proj_b.contiguous(), grid, right=True).to(proj_a.dtype) / n_b
    sq = ((Fa - Fb).pow(2).sum(-1) * dz).mean(-1)
    return (2 * sq).sqrt()
