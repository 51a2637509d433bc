"""Conditional mixture density network: p(y | θ) = Σ_c π_c(θ) N(y; μ_c(θ), Σ_c(θ)).

Fast to fit and to sample, likelihood-trained (so no adversarial instability), and
with full covariances when k > 1 (diagonal components cannot represent correlated
outputs). Trained with a fixed gradient-step budget per refit, on random
minibatches of (call, sample) rows, with warm starts between refits.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from surrogates.base import FIT_STREAM_PRIME, Standardizer, Surrogate, mlp

# Floor of every standardised scale (the Cholesky diagonal): keeps each component's covariance well
# conditioned (condition number ≤ (max scale / 1e-3)²) so its log-density cannot diverge on an atom.
SCALE_FLOOR = 1e-3
#: Share of an output's training values that must sit exactly on its minimum (maximum) for that value to be
#: an atom (``clip_to_data``): a continuous output repeats its extreme value with probability ~0.
ATOM_FRACTION = 0.01
#: Floor of the mixture factor's diagonal relative to the largest entry of its raw matrix: a thousandth of
#: SCALE_FLOOR, so it only rescues a rank-deficient matrix and never binds where SCALE_FLOOR does.
DIAG_FLOOR_FRACTION = SCALE_FLOOR * 1e-3


class MDN(Surrogate):
    """Args:
        components: mixture components.
        hidden, layers: MLP width and depth.
        steps: gradient steps of the first fit; refit_steps: of each later (warm) fit.
        batch: rows per step. lr: Adam learning rate.
        theta_noise: std of Gaussian noise added to θ while training (regularises between sparse θs).
        clip_to_data: where more than 1 % of an output's training values sit exactly on its smallest (or
            largest) value, clip generated samples there. Such a point mass on a hard bound (hit weights that
            are exactly 0 for most muons) is then kept; a Gaussian mixture alone spreads it across the bound.
            Continuous outputs have no such atom and are never clipped, so the surrogate can still predict
            values beyond those seen (which WU-GO's optimism needs).
        censor: with ``clip_to_data``, train on the atom's values as censored (a Tobit likelihood: the
            mixture's probability of lying beyond the bound, not its density at it). Clipping the samples
            then reproduces the atom's weight by construction. A row with one censored output is exact
            (the censored output's Gaussian conditional on the observed ones); with several, they are taken
            as independent given the observed outputs.
    """

    def __init__(self, dim: int, k: int, seed: int = 0, components: int = 8, hidden: int = 64, layers: int = 2,
                 steps: int = 1500, refit_steps: int = 400, batch: int = 512, lr: float = 3e-3,
                 theta_noise: float = 0.01, clip_to_data: bool = True, censor: bool = True) -> None:
        super().__init__(dim, k, seed)
        self.C, self.steps, self.refit_steps, self.batch, self.lr = components, steps, refit_steps, batch, lr
        self.theta_noise = theta_noise
        self.clip_to_data, self.censor = clip_to_data, censor
        self.lo = torch.full((k,), -torch.inf, dtype=torch.float64)
        self.hi = torch.full((k,), torch.inf, dtype=torch.float64)
        self.n_tril = k * (k + 1) // 2
        # the initial weights come from the model seed without touching the caller's global torch stream
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = mlp(dim, components * (1 + k + self.n_tril), hidden, layers)
        self.scaler = Standardizer(k)
        self._rows = torch.tril_indices(k, k)

    def _params(self, theta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``theta [M, d]`` → logits ``[M, C]``, means ``[M, C, k]``, scale_tril ``[M, C, k, k]``."""
        out = self.net(theta.float())
        M, C, k = out.shape[0], self.C, self.k
        logits = out[:, :C]
        means = out[:, C : C + C * k].reshape(M, C, k)
        raw = out[:, C + C * k :]
        if k == 1:  # fast path: a scale per component
            return logits, means, (torch.nn.functional.softplus(raw) + SCALE_FLOOR).reshape(M, C, 1, 1)
        L = torch.zeros(M, C, k, k, dtype=out.dtype)
        L[..., self._rows[0], self._rows[1]] = raw.reshape(M, C, self.n_tril)
        diag = torch.nn.functional.softplus(torch.diagonal(L, dim1=-2, dim2=-1)) + SCALE_FLOOR
        return logits, means, torch.tril(L, -1) + torch.diag_embed(diag)

    def log_prob(self, theta: Tensor, y: Tensor, state: Tensor | None = None) -> Tensor:
        """Log likelihood of standardised ``y [M, k]`` at ``theta [M, d]`` → ``[M]``.

        ``state [M, k]`` (optional): 0 observed, 1 censored at the lower atom, 2 at the upper atom.
        """
        logits, means, L = self._params(theta)
        logw = torch.log_softmax(logits, -1)
        if state is None or not bool(state.any()):
            return torch.logsumexp(logw + self._log_density(means, L, y), -1)
        if self.k == 1:  # fast path: no grouping by censoring pattern
            tail = self._log_beyond(state, torch.zeros(1, dtype=torch.long), means[..., 0], L[..., 0, 0])
            return torch.logsumexp(logw + torch.where(state > 0, tail, self._log_density(means, L, y)), -1)
        out = torch.empty(y.shape[0], dtype=means.dtype)
        codes = (state * 3 ** torch.arange(self.k)).sum(1)
        for code in codes.unique():
            rows = codes == code
            out[rows] = torch.logsumexp(logw[rows] + self._log_censored(means[rows], L[rows], y[rows], state[rows][0]), -1)
        return out

    def _log_density(self, means: Tensor, L: Tensor, y: Tensor) -> Tensor:
        """Per-component log densities ``[M, C]`` of ``y [M, k]``."""
        diff = y[:, None, :] - means  # [M, C, k]
        if self.k == 1:
            scale = L[..., 0, 0]
            return -0.5 * (diff[..., 0] / scale).pow(2) - scale.log() - 0.5 * math.log(2 * math.pi)
        z = torch.linalg.solve_triangular(L, diff[..., None], upper=False).squeeze(-1)
        logdet = torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
        return -0.5 * z.pow(2).sum(-1) - logdet - 0.5 * self.k * math.log(2 * math.pi)

    def _log_censored(self, means: Tensor, L: Tensor, y: Tensor, state: Tensor) -> Tensor:
        """Per-component ``[M, C]`` log of density(observed outputs) · P(censored ones beyond their bounds | observed),
        for rows sharing one censoring ``state [k]``."""
        cens = state > 0
        perm = torch.cat([torch.nonzero(~cens)[:, 0], torch.nonzero(cens)[:, 0]])
        o = int((~cens).sum())
        if self.k > 1 and not torch.equal(perm, torch.arange(self.k)):
            # observed outputs first: the lower factor's leading block is then their marginal. Refactorise
            # the permuted covariance P·L·Lᵀ·Pᵀ by a QR of (P·L)ᵀ = Q·R (then P·L·Lᵀ·Pᵀ = Rᵀ·R), never by a
            # Cholesky of the explicit product: in float32 that product of a factor with scales spanning
            # SCALE_FLOOR…10 is not numerically positive-definite, and Cholesky raises.
            L = _lower_factor(L[..., perm, :])
        m, yp = means[..., perm], y[:, perm]
        comp = torch.zeros(means.shape[:2], dtype=means.dtype)
        cmean = m[..., o:]
        if o > 0:
            Loo = L[..., :o, :o]
            z = torch.linalg.solve_triangular(Loo, (yp[:, None, :o] - m[..., :o])[..., None], upper=False).squeeze(-1)
            comp = -0.5 * z.pow(2).sum(-1) - torch.log(torch.diagonal(Loo, dim1=-2, dim2=-1)).sum(-1) \
                - 0.5 * o * math.log(2 * math.pi)
            cmean = cmean + (L[..., o:, :o] @ z[..., None]).squeeze(-1)
        csd = L[..., o:, o:].pow(2).sum(-1).sqrt()  # conditional sd of each censored output given the observed
        idx = perm[o:]
        return comp + self._log_beyond(state[idx], idx, cmean, csd).sum(-1)

    def _log_beyond(self, state: Tensor, idx: Tensor, mean: Tensor, sd: Tensor) -> Tensor:
        """log P(a Gaussian (``mean``, ``sd``) output lies beyond its atom): at or below the lower one where
        ``state`` is 1, at or above the upper one where it is 2. ``idx`` names the output columns of
        ``state``'s last axis; entries with state 0 get a finite value that callers discard."""
        lower = state == 1
        # unused bounds are 0, not ±inf, which would make NaN gradients
        bound = torch.where(state > 0, torch.where(lower, self._lo_std[idx], self._hi_std[idx]), 0.0).to(mean.dtype)
        sign = torch.where(lower, 1.0, -1.0).to(mean.dtype)
        return torch.special.log_ndtr(sign * (bound - mean) / sd)

    def fit(self, theta: Tensor, samples: Tensor) -> None:
        """Maximise the likelihood of ``samples [N, n, k]`` at ``theta [N, d]``: a fixed number of Adam steps on random rows.

        The first fit runs ``steps``, later ones ``refit_steps`` from the current weights. A value that more than
        ``ATOM_FRACTION`` of the samples take exactly at the data's minimum or maximum is an atom: samples are
        clipped to it (and, with ``censor``, it is fitted as a censored boundary).
        """
        N, n, k = samples.shape
        self.scaler.fit(samples)
        flat = samples.reshape(-1, k).double()
        lo, hi = flat.min(0).values, flat.max(0).values
        inf = torch.full_like(lo, torch.inf)
        self.lo = torch.where((flat == lo).double().mean(0) > ATOM_FRACTION, lo, -inf)
        self.hi = torch.where((flat == hi).double().mean(0) > ATOM_FRACTION, hi, inf)
        y = self.scaler.forward(samples).reshape(N * n, k)
        state = None
        if self.clip_to_data and self.censor and (torch.isfinite(self.lo) | torch.isfinite(self.hi)).any():
            self._lo_std, self._hi_std = self.scaler.forward(self.lo[None])[0], self.scaler.forward(self.hi[None])[0]
            state = ((flat == self.lo).long() + 2 * ((flat == self.hi) & (flat != self.lo)).long())
        th = theta.float()
        g = torch.Generator().manual_seed(self.seed * FIT_STREAM_PRIME + self.fits)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        steps = self.steps if self.fits == 0 else self.refit_steps
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=self.lr / 10)
        self.net.train()
        for _ in range(steps):
            rows = torch.randint(0, N * n, (min(self.batch, N * n),), generator=g)
            t = th[rows // n]
            if self.theta_noise > 0:
                t = t + self.theta_noise * torch.randn(t.shape, generator=g)
            loss = -self.log_prob(t, y[rows], None if state is None else state[rows]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        self.net.eval()
        self.fits += 1

    def mixture(self, theta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The fitted mixture at ``theta [M, d]`` in raw output units, differentiable in θ (float64).

        Returns:
            log weights ``[M, C]``, means ``[M, C, k]`` and scale_tril ``[M, C, k, k]``. Generated samples are
            these Gaussians' draws clipped to ``(lo, hi)``, as :meth:`sample` draws them.
        """
        logits, means, L = self._params(theta)
        mean, std = self.scaler.mean.to(torch.float64), self.scaler.std.to(torch.float64)
        return (torch.log_softmax(logits.double(), -1), mean + std * means.double(),
                std[:, None] * L.double())  # y = mean + std ⊙ z, so each row of L scales by its std

    @torch.no_grad()
    def sample(self, theta: Tensor, n: int, generator: torch.Generator | None = None, common: bool = False) -> Tensor:
        """``theta [M, d]`` → ``[M, n, k]``: pick a component by its weight, then draw from its Gaussian (clipped to the data's atoms)."""
        M = theta.shape[0]
        logits, means, L = self._params(theta)
        lead = 1 if common else M
        u = torch.rand(lead, n, generator=generator)
        eps = torch.randn(lead, n, self.k, generator=generator)
        cum = torch.softmax(logits.double(), -1).cumsum(-1)
        cum[:, -1] = 1.0
        comp = torch.searchsorted(cum, u.double().expand(M, n).contiguous()).clamp(max=self.C - 1)  # [M, n]
        mu = torch.gather(means, 1, comp[..., None].expand(M, n, self.k))
        Lc = torch.gather(L, 1, comp[..., None, None].expand(M, n, self.k, self.k))
        z = mu + (Lc @ eps.expand(M, n, self.k)[..., None]).squeeze(-1)
        out = self.scaler.inverse(z)
        return torch.maximum(torch.minimum(out, self.hi), self.lo) if self.clip_to_data else out

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "scaler": self.scaler.state(), "fits": self.fits,
                "range": (self.lo, self.hi)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.scaler.load(state["scaler"])
        self.fits = state["fits"]
        if "range" in state:  # states saved before clipping existed have none
            self.lo, self.hi = state["range"]


def _lower_factor(A: Tensor) -> Tensor:
    """A lower-triangular ``L'`` with ``L'·L'ᵀ = A·Aᵀ`` for square ``A [..., k, k]``, by Householder QR of ``Aᵀ``.

    Unlike a Cholesky of ``A·Aᵀ`` this never fails: the diagonal is made positive and floored (relative to
    the row scale of ``A``) so logs and triangular solves stay finite. Computed in float64.
    """
    _, R = torch.linalg.qr(A.double().transpose(-1, -2))
    sign = torch.where(torch.diagonal(R, dim1=-2, dim2=-1) < 0, -1.0, 1.0).to(R.dtype)
    Lp = (R * sign[..., :, None]).transpose(-1, -2)  # rows of R flipped to a positive diagonal
    diag = torch.diagonal(Lp, dim1=-2, dim2=-1)
    floor = DIAG_FLOOR_FRACTION * A.double().abs().amax(dim=(-2, -1), keepdim=False)[..., None]
    Lp = torch.tril(Lp, -1) + torch.diag_embed(torch.maximum(diag, floor))
    return Lp.to(A.dtype)
