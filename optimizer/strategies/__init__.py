"""Strategies a study can name under ``strategy.name``."""

from optimizer.registry import Registry
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
    },
)

__all__ = ["STRATEGIES", "History", "Strategy", "initial_design"]
