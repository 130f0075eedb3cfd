"""The narrative every narrator returns (built-in or LLM), validated against one schema.

`{summary, highlights[], recommendations[{title, why, metric, capability, evidence}]}` —
DESIGN.md, "Narration", plus the DORA capability each recommendation applies
(`narrate/capabilities.py`). `metric` must be one of `METRICS`; the verifier checks every
number against the facts document and that the capability fits the metric. `capability` may be
missing only on narratives stored before it existed; the checker rejects a new one without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from insights.narrate.capabilities import CapabilityName

MetricName = Literal[
    "deployment_frequency",
    "lead_time",
    "change_failure_rate",
    "recovery_time",
    "rework_rate",
]
METRICS: tuple[str, ...] = MetricName.__args__  # type: ignore[attr-defined]


class Recommendation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=3, max_length=160)
    why: str = Field(min_length=3, max_length=1200)
    metric: MetricName
    capability: CapabilityName | None = None
    evidence: list[str] = Field(default_factory=list, max_length=6)


class Narrative(BaseModel):
    """What a report, digest or `insights narrate` shows as prose."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=10, max_length=2500)
    highlights: list[str] = Field(default_factory=list, max_length=8)
    recommendations: list[Recommendation] = Field(min_length=1, max_length=5)

    def texts(self) -> Iterator[tuple[str, str]]:
        """(where, text) for every piece of prose, e.g. `("recommendations[0].why", "…")`:
        what the checkers read."""
        yield "summary", self.summary
        for i, line in enumerate(self.highlights):
            yield f"highlights[{i}]", line
        for i, rec in enumerate(self.recommendations):
            yield f"recommendations[{i}].title", rec.title
            yield f"recommendations[{i}].why", rec.why
            for j, item in enumerate(rec.evidence):
                yield f"recommendations[{i}].evidence[{j}]", item


class NarrativeResult(BaseModel):
    """A narrative and who wrote it, at what cost. `outcome` says how it was obtained:
    accepted (first answer passed the checks), repaired (second answer passed), fallback
    (built-in narrator after a failed provider), builtin (built-in by configuration),
    cached (same facts, model and prompt version as before)."""

    narrative: Narrative
    provider: str
    model: str | None = None
    prompt_version: str
    outcome: Literal["builtin", "accepted", "repaired", "fallback", "cached", "over_budget"]
    reason: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: int = 0
    cost_usd: float = 0.0
