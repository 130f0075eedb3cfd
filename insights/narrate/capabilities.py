"""The DORA capability catalog: what a recommendation may apply, and which metric it moves.

Every recommendation names one capability from `CAPABILITIES` (the names of the capability
catalog at https://dora.dev/capabilities/, grouped as there: climate for learning, fast flow,
fast feedback), and the capability must fit the metric the recommendation targets
(`FITS`). The table is the research's own claim, per capability page, of which of the keys it
drives: small batches move lead time, deployment frequency and change failure rate; monitoring
and proactive failure notification move recovery; a culture capability alone moves none of the
four keys directly and so fits only rework (post-incident learning).

Code review is not a capability of its own in the catalog: dora.dev files peer review under
"streamlining change approval" (lightweight peer review instead of an external board).

>>> fits("working in small batches", "lead_time"), fits("learning culture", "lead_time")
(True, False)
"""

from __future__ import annotations

from typing import Literal

CATALOG_SOURCE = "https://dora.dev/capabilities/"

CapabilityName = Literal[
    # Fast flow
    "continuous delivery",
    "database change management",
    "deployment automation",
    "flexible infrastructure",
    "loosely coupled teams",
    "streamlining change approval",
    "trunk-based development",
    "version control",
    "visual management",
    "work in process limits",
    "working in small batches",
    # Fast feedback
    "continuous integration",
    "customer feedback",
    "monitoring and observability",
    "monitoring systems to inform business decisions",
    "pervasive security",
    "proactive failure notification",
    "test automation",
    "test data management",
    "visibility of work in the value stream",
    # Climate for learning
    "code maintainability",
    "documentation quality",
    "empowering teams to choose tools",
    "generative organizational culture",
    "job satisfaction",
    "learning culture",
    "team experimentation",
    "transformational leadership",
    "well-being",
]
CAPABILITIES: tuple[str, ...] = CapabilityName.__args__  # type: ignore[attr-defined]

_LT, _DF, _CFR, _RT, _RW = (
    "lead_time",
    "deployment_frequency",
    "change_failure_rate",
    "recovery_time",
    "rework_rate",
)
# capability → the metrics it can move. Measuring the flow ("visibility of work in the value
# stream") fits every metric: recording deployments and incidents is how any of them is seen.
FITS: dict[str, frozenset[str]] = {
    "continuous delivery": frozenset({_LT, _DF, _CFR, _RT, _RW}),
    "database change management": frozenset({_LT, _DF, _CFR}),
    "deployment automation": frozenset({_LT, _DF, _CFR, _RT}),
    "flexible infrastructure": frozenset({_DF, _RT}),
    "loosely coupled teams": frozenset({_LT, _DF}),
    "streamlining change approval": frozenset({_LT, _DF}),
    "trunk-based development": frozenset({_LT, _DF, _CFR}),
    "version control": frozenset({_LT, _RT}),
    "visual management": frozenset({_LT}),
    "work in process limits": frozenset({_LT}),
    "working in small batches": frozenset({_LT, _DF, _CFR, _RT, _RW}),
    "continuous integration": frozenset({_LT, _DF, _CFR, _RW}),
    "customer feedback": frozenset(),
    "monitoring and observability": frozenset({_RT, _CFR, _RW}),
    "monitoring systems to inform business decisions": frozenset(),
    "pervasive security": frozenset({_CFR}),
    "proactive failure notification": frozenset({_RT}),
    "test automation": frozenset({_CFR, _RW, _LT}),
    "test data management": frozenset({_CFR}),
    "visibility of work in the value stream": frozenset({_LT, _DF, _CFR, _RT, _RW}),
    "code maintainability": frozenset({_LT, _CFR}),
    "documentation quality": frozenset({_RT}),
    "empowering teams to choose tools": frozenset(),
    "generative organizational culture": frozenset({_RW}),
    "job satisfaction": frozenset(),
    "learning culture": frozenset({_RW, _RT}),
    "team experimentation": frozenset(),
    "transformational leadership": frozenset(),
    "well-being": frozenset(),
}
assert set(FITS) == set(CAPABILITIES)


def fits(capability: str, metric: str) -> bool:
    """True when the catalog says `capability` moves `metric`."""
    return metric in FITS.get(capability, frozenset())


def capabilities_for(metric: str) -> list[str]:
    """The capabilities that fit `metric`, in catalog order (what the prompt offers)."""
    return [c for c in CAPABILITIES if fits(c, metric)]
