"""Conditional WGAN-GP, the WU-GO paper's surrogate.

``preset="paper"`` reproduces the public WU-GO code: generator Linear(d+10 → 64)–Tanh–Linear(64 → k)
on concat(θ, z) with z ~ N(0, I₁₀); critic Linear(d+k → 64)–Tanh–Linear(64 → 1) on concat(θ, y);
gradient penalty on the response only with λ = 1; 5 critic steps per generator step with fresh z
and the same real minibatch; Adam β = (0.9, 0.999), lr 1e-4; batch 16 (drop_last), 100 epochs over
all samples; from the second fit on lr × 100 = 1e-2 with StepLR(33 epochs, γ = 0.1); weights
warm-started, optimisers re-created each fit; no output scaling. One deviation: θ enters in the unit
cube mapped back to the study's bounds (``theta_low``/``theta_high``), i.e. in raw units as in the
paper only when those bounds are passed (the WU-GO strategy does).

``preset="fast"`` keeps the architecture but standardises outputs and trains for a fixed number
of generator steps on larger batches.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from surrogates.base import FIT_STREAM_PRIME, Standardizer, Surrogate, mlp

PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(latent=10, hidden=64, lambda_gp=1.0, n_critic=5, lr=1e-4, batch=16, epochs=100, steps=None,
                  refit_lr_factor=100.0, step_size_epochs=33, gamma=0.1, standardize=False),
    "fast": dict(latent=10, hidden=64, lambda_gp=1.0, n_critic=5, lr=1e-3, batch=256, epochs=None, steps=600,
                 refit_lr_factor=1.0, step_size_epochs=None, gamma=1.0, standardize=True),
}


class ConditionalWGAN(Surrogate):
    """Conditional WGAN-GP G(z, θ) → y for ``dim`` parameters and ``k`` outputs (see the module docstring for the presets).

    Args:
        dim: θ dimension (unit cube).
        k: output columns.
        seed: seeds the initial weights and each fit's minibatch stream.
        preset: ``"paper"`` (the public WU-GO code) or ``"fast"``.
        theta_low, theta_high: the study's bounds, so θ enters in its own units as in the paper (``None``: unit cube).
        overrides: any hyperparameter of the preset (``lr``, ``steps``, ``latent``...).
    """

    def __init__(self, dim: int, k: int, seed: int = 0, preset: str = "paper",
                 theta_low: list[float] | None = None, theta_high: list[float] | None = None, **overrides: Any) -> None:
        super().__init__(dim, k, seed)
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got '{preset}'")
        unknown = set(overrides) - set(PRESETS[preset])
        if unknown:
            raise TypeError(f"unknown WGAN options {sorted(unknown)}")
        self.cfg = {**PRESETS[preset], **overrides}
        h, lat = self.cfg["hidden"], self.cfg["latent"]
        with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's global stream is left alone
            torch.manual_seed(seed)
            self.G = mlp(dim + lat, k, h, 1, torch.nn.Tanh)
            self.D = mlp(dim + k, 1, h, 1, torch.nn.Tanh)
        self.scaler = Standardizer(k)
        lo = torch.tensor(theta_low if theta_low is not None else [0.0] * dim, dtype=torch.float32)
        hi = torch.tensor(theta_high if theta_high is not None else [1.0] * dim, dtype=torch.float32)
        self._lo, self._span = lo, hi - lo

    def _cond(self, theta: Tensor) -> Tensor:
        return self._lo + theta.float() * self._span

    def _y(self, samples: Tensor) -> Tensor:
        return self.scaler.forward(samples) if self.cfg["standardize"] else samples.float()

    def _y_inv(self, y: Tensor) -> Tensor:
        return self.scaler.inverse(y) if self.cfg["standardize"] else y.double()

    def _gp(self, c: Tensor, real: Tensor, fake: Tensor, g: torch.Generator) -> Tensor:
        a = torch.rand(real.shape[0], 1, generator=g)
        y_hat = (a * real + (1 - a) * fake).requires_grad_(True)
        d = self.D(torch.cat([c, y_hat], 1))
        (grad,) = torch.autograd.grad(d.sum(), y_hat, create_graph=True)
        return ((grad.norm(2, dim=1) - 1) ** 2).mean()

    def _step(self, c: Tensor, real: Tensor, optD: Any, optG: Any, g: torch.Generator) -> None:
        lat, B = self.cfg["latent"], real.shape[0]
        for _ in range(self.cfg["n_critic"]):
            fake = self.G(torch.cat([c, torch.randn(B, lat, generator=g)], 1)).detach()
            lossD = (self.D(torch.cat([c, fake], 1)).mean() - self.D(torch.cat([c, real], 1)).mean()
                     + self.cfg["lambda_gp"] * self._gp(c, real, fake, g))
            optD.zero_grad(set_to_none=True)
            lossD.backward()
            optD.step()
        fake = self.G(torch.cat([c, torch.randn(B, lat, generator=g)], 1))
        lossG = -self.D(torch.cat([c, fake], 1)).mean()
        optG.zero_grad(set_to_none=True)
        lossG.backward()
        optG.step()

    def fit(self, theta: Tensor, samples: Tensor) -> None:
        """Train generator and critic on ``samples [N, n, k]`` at ``theta [N, d]`` (WGAN-GP, warm-started after the first fit).

        ``paper``: epochs over all rows, lr × ``refit_lr_factor`` with a step schedule from the second fit;
        ``fast``: a fixed number of generator steps on random minibatches.
        """
        cfg = self.cfg
        N, n, k = samples.shape
        if cfg["standardize"]:
            self.scaler.fit(samples)
        y = self._y(samples).reshape(N * n, k)
        c_all = self._cond(theta).repeat_interleave(n, 0)
        g = torch.Generator().manual_seed(self.seed * FIT_STREAM_PRIME + self.fits)
        lr = cfg["lr"] * (cfg["refit_lr_factor"] if self.fits > 0 else 1.0)
        optD = torch.optim.Adam(self.D.parameters(), lr=lr, betas=(0.9, 0.999))
        optG = torch.optim.Adam(self.G.parameters(), lr=lr, betas=(0.9, 0.999))
        schedule = self.fits > 0 and cfg["step_size_epochs"]
        scheds = [torch.optim.lr_scheduler.StepLR(o, cfg["step_size_epochs"], cfg["gamma"]) for o in (optD, optG)] if schedule else []
        B = cfg["batch"]
        if cfg["epochs"] is not None:
            for _ in range(cfg["epochs"]):
                perm = torch.randperm(N * n, generator=g)
                for start in range(0, N * n - B + 1, B):  # drop_last
                    rows = perm[start : start + B]
                    self._step(c_all[rows], y[rows], optD, optG, g)
                for s in scheds:
                    s.step()
        else:
            for _ in range(cfg["steps"]):
                rows = torch.randint(0, N * n, (min(B, N * n),), generator=g)
                self._step(c_all[rows], y[rows], optD, optG, g)
        self.fits += 1

    @torch.no_grad()
    def sample(self, theta: Tensor, n: int, generator: torch.Generator | None = None, common: bool = False) -> Tensor:
        """``theta [M, d]`` → ``[M, n, k]``: the generator at ``n`` latent draws per point (shared by all points when ``common``)."""
        M, lat = theta.shape[0], self.cfg["latent"]
        z = torch.randn(1 if common else M, n, lat, generator=generator).expand(M, n, lat)
        c = self._cond(theta)[:, None, :].expand(M, n, self.dim)
        return self._y_inv(self.G(torch.cat([c, z], -1)))

    def state_dict(self) -> dict[str, Any]:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(), "scaler": self.scaler.state(), "fits": self.fits}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.scaler.load(state["scaler"])
        self.fits = state["fits"]
