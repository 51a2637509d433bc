"""detopt: black-box detector-design optimisation.

Python API (the CLI is a thin layer over it)::

    from optimizer import load_study, Campaign, run_campaign
    study, text = load_study("studies/benchmarks/three_hump_camel.yaml")
    camp = Campaign.create("runs/demo", study, text, source="studies/benchmarks/three_hump_camel.yaml")
    summary = run_campaign(camp, study)
"""

__version__ = "0.1.0"

from optimizer.campaign import Campaign, CampaignSummary, run_campaign  # noqa: E402
from optimizer.study import StudyConfig, load_study, validate_study  # noqa: E402

__all__ = ["Campaign", "CampaignSummary", "StudyConfig", "__version__", "load_study", "run_campaign", "validate_study"]
