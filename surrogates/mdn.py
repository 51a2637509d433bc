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

from surrogates.base import Standardizer, Surrogate, mlp


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
    """

    def __init__(self, dim: int, k: int, seed: int = 0, components: int = 8, hidden: int = 64, layers: int = 2,
                 steps: int = 1500, refit_steps: int = 400, batch: int = 512, lr: float = 3e-3,
                 theta_noise: float = 0.01, clip_to_data: bool = True) -> None:
        super().__init__(dim, k, seed)
        self.C, self.steps, self.refit_steps, self.batch, self.lr = components, steps, refit_steps, batch, lr
        self.theta_noise = theta_noise
        self.clip_to_data = clip_to_data
        self.lo = torch.full((k,), -torch.inf, dtype=torch.float64)
        self.hi = torch.full((k,), torch.inf, dtype=torch.float64)
        self.n_tril = k * (k + 1) // 2
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
            return logits, means, (torch.nn.functional.softplus(raw) + 1e-3).reshape(M, C, 1, 1)
        L = torch.zeros(M, C, k, k, dtype=out.dtype)
        L[..., self._rows[0], self._rows[1]] = raw.reshape(M, C, self.n_tril)
        diag = torch.nn.functional.softplus(torch.diagonal(L, dim1=-2, dim2=-1)) + 1e-3
        return logits, means, torch.tril(L, -1) + torch.diag_embed(diag)

    def log_prob(self, theta: Tensor, y: Tensor) -> Tensor:
        """Log density of standardised ``y [M, k]`` at ``theta [M, d]`` → ``[M]``."""
        logits, means, L = self._params(theta)
        diff = y[:, None, :] - means  # [M, C, k]
        if self.k == 1:
            scale = L[..., 0, 0]
            comp = -0.5 * (diff[..., 0] / scale).pow(2) - scale.log() - 0.5 * math.log(2 * math.pi)
        else:
            z = torch.linalg.solve_triangular(L, diff[..., None], upper=False).squeeze(-1)
            logdet = torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
            comp = -0.5 * z.pow(2).sum(-1) - logdet - 0.5 * self.k * math.log(2 * math.pi)
        return torch.logsumexp(torch.log_softmax(logits, -1) + comp, -1)

    def fit(self, theta: Tensor, samples: Tensor) -> None:
        N, n, k = samples.shape
        self.scaler.fit(samples)
        flat = samples.reshape(-1, k).double()
        lo, hi = flat.min(0).values, flat.max(0).values
        inf = torch.full_like(lo, torch.inf)
        self.lo = torch.where((flat == lo).double().mean(0) > 0.01, lo, -inf)
        self.hi = torch.where((flat == hi).double().mean(0) > 0.01, hi, inf)
        y = self.scaler.forward(samples).reshape(N * n, k)
        th = theta.float()
        g = torch.Generator().manual_seed(self.seed * 7919 + self.fits)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        steps = self.steps if self.fits == 0 else self.refit_steps
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=self.lr / 10)
        self.net.train()
        for _ in range(steps):
            rows = torch.randint(0, N * n, (min(self.batch, N * n),), generator=g)
            t = th[rows // n]
            if self.theta_noise > 0:
                t = t + self.theta_noise * torch.randn(t.shape, generator=g)
            loss = -self.log_prob(t, y[rows]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        self.net.eval()
        self.fits += 1

    @torch.no_grad()
    def sample(self, theta: Tensor, n: int, generator: torch.Generator | None = None, common: bool = False) -> Tensor:
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
