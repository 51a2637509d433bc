"""detopt: black-box detector-design optimisation.

Python API (the CLI is a thin layer over it)::

    from optimizer import load_study, Campaign, run_campaign
    study, text = load_study("studies/benchmarks/three_hump_camel.yaml")
    camp = Campaign.create("runs/demo", study, text, source="studies/benchmarks/three_hump_camel.yaml")
    summary = run_campaign(camp, study)

These names load on first use: importing a submodule such as ``optimizer.registry`` (every
simulator does) must not pay for the driver, torch or pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optimizer.registry import lazy_exports

__version__ = "0.1.0"

if TYPE_CHECKING:
    from optimizer.campaign import Campaign, CampaignSummary, run_campaign
    from optimizer.study import StudyConfig, load_study, validate_study

__getattr__, __dir__ = lazy_exports(__name__, {
    "Campaign": "optimizer.campaign",
    "CampaignSummary": "optimizer.campaign",
    "run_campaign": "optimizer.campaign",
    "StudyConfig": "optimizer.study",
    "load_study": "optimizer.study",
    "validate_study": "optimizer.study",
})

__all__ = ["Campaign", "CampaignSummary", "StudyConfig", "__version__", "load_study", "run_campaign", "validate_study"]
