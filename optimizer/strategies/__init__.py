"""Strategies a study can name under ``strategy.name``.

``History``, ``Strategy`` and ``initial_design`` load on first use, so listing the names costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optimizer.registry import Registry, lazy_exports

if TYPE_CHECKING:
    from optimizer.strategies.base import History, Strategy, initial_design

STRATEGIES: Registry[type[Strategy]] = Registry(
    "strategy",
    {
        "sobol": "optimizer.strategies.base:SobolStrategy",
        "random": "optimizer.strategies.base:RandomStrategy",
        "listed": "optimizer.strategies.base:ListedStrategy",
        "wugo": "optimizer.strategies.wugo:WUGOStrategy",
        "gp": "optimizer.strategies.gp:GPStrategy",
        "turbo": "optimizer.strategies.turbo:TurboStrategy",
        "cmaes": "optimizer.strategies.cma_es:CMAESStrategy",
        "lgso": "optimizer.strategies.lgso:LGSOStrategy",
        "nn-ensemble": "optimizer.strategies.ensemble:DeepEnsembleStrategy",
        "auto": "optimizer.strategies.auto:AutoStrategy",
    },
)

__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(("History", "Strategy", "initial_design"),
                                                             "optimizer.strategies.base"))

__all__ = ["STRATEGIES", "History", "Strategy", "initial_design"]
