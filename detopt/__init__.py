"""detopt: detector-design optimisation. The notebook API (see :mod:`optimizer.api`)::

    import detopt
    res = detopt.optimize(fn, "study.yaml")        # fn(params, n, seed) -> array [n, k]
    res.to_pandas(); res.best(); res.pareto()
    detopt.open_campaign("runs/NAME")

The names load on first use, so ``import detopt`` is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optimizer import __version__
from optimizer.registry import lazy_exports

if TYPE_CHECKING:
    from optimizer.api import Results, open_campaign, optimize

__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(("Results", "open_campaign", "optimize"), "optimizer.api"))

__all__ = ["Results", "__version__", "open_campaign", "optimize"]
