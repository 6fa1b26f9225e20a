"""``prefroute label``: LLM-judge labels for any pair of models, as battles ``train`` reads.

The user brings prompts (their traffic); both models answer them through any
OpenAI-compatible endpoint, a judge model compares the answers in both orders,
and the verdicts become battles (``source: judge``). Every call is stored the
moment it returns (``store``), so a crash costs at most the calls in flight and
the same command resumes; ``--dry-run`` estimates the cost first and
``--max-cost`` caps it. See docs/labeling.md.
"""

from __future__ import annotations

from prefroute.label.estimate import Estimate, estimate
from prefroute.label.plan import Job
from prefroute.label.run import Summary, label
from prefroute.label.settings import LabelSettings, load_label_settings

__all__ = [
    "Estimate",
    "Job",
    "LabelSettings",
    "Summary",
    "estimate",
    "label",
    "load_label_settings",
]
