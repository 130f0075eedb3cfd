"""The built-in narrator: a deterministic, offline analyst over the facts document.

It is the default provider and the fallback for every other, so it must always produce a
narrative that passes `verify.check`: it only ever quotes values it reads from the facts, in
the rendering the facts give them, and never computes a new number.

Summary (3–5 sentences): deployments and their tier, lead time and its tier, stability (change
failure rate, recovery, rework), the biggest move since the previous window and where it came
from (the lead-time breakdown), the overall tier. Moves are worded by their verdicts: "improved"
or "worsened" only when the verdict against the previous window says so, otherwise "within
normal variation" or "too few recoveries to judge". Recommendations (3–5) come from rules drawn
from the DORA research (Accelerate; the State of DevOps reports) and common practice; each fires
on thresholds in `RULES` and scores by how far the team is from good, and the best-scored
distinct ones are kept:

- review dominates lead time → review SLA, small pull requests
- coding dominates lead time → smaller batches, trunk-based development
- merged changes wait for a deploy → continuous delivery
- high change failure rate with infrequent deploys → smaller, more frequent releases + tests
- high change failure rate with frequent deploys → automated tests, canary releases
- long recovery → rollback automation, feature flags
- high rework → blameless post-incident reviews, fix root causes
- infrequent deploys → make deploying routine
- a metric that worsened sharply (and its verdict says so) → find what changed
- gaps in the data (unlinked incidents, no lead-time samples) → fix the data first
Every recommendation names the DORA capability it applies (`CAPABILITY_OF`, from the catalog in
`narrate/capabilities.py`, fitting the rule's metric).
When fewer than three rules fire, advice for the metrics no rule spoke about fills the list
(weakest tier first): how to improve a low/medium metric, how to keep a high/elite one.

Advice follows what the data holds (the facts' `data`, `deployment_source`, `incidents`):
- a window without deployments asks for the data that is missing (deployments; commits and
  pull requests only when none are recorded; incidents only when none are recorded) and, when
  commits were made in the window, points at the unreleased work;
- incident practice (post-incident reviews) only when incidents exist; failures that are all
  rollbacks get rollback advice;
- a service whose deployments are release tags is spoken of in releases, and is advised on its
  release cadence, not told to deploy each merged change every day.
Durations are written with `insights.humanize` (hours, days or weeks); the facts list those
renderings, so the checker accepts them. Trend claims count the windows with data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from insights import humanize
from insights.narrate import trend_claims
from insights.narrate.schema import Narrative, NarrativeResult, Recommendation
from insights.narrate.verify import check

VERSION = "builtin-2"

LABELS = {
    "deployment_frequency": "deployment frequency",
    "lead_time": "lead time",
    "change_failure_rate": "change failure rate",
    "recovery_time": "recovery time",
    "rework_rate": "rework rate",
}
STAGE_LABELS = {
    "coding": "coding (first commit to pull request)",
    "pickup": "pickup (waiting for a first review)",
    "review": "review (first review to merge)",
    "deploy": "deploy (merge to production)",
}
# Thresholds of the rules (percent and hours). A change failure rate above 15% and recovery
# over a day put a team outside the DORA "high" cluster; the others are common practice.
RULES = {
    "review_share_pct": 40,
    "review_min_hours": 4,
    "coding_share_pct": 40,
    "coding_min_hours": 24,
    "deploy_share_pct": 30,
    "deploy_min_hours": 24,
    "cfr_high_pct": 15,
    "recovery_slow_hours": 24,
    "rework_high_pct": 10,
    "deploy_days_low_pct": 50,
    "regression_pct": 25,
    "regression_min_pp": 5,
    "lead_time_min_samples": 5,
}
FEW_DEPLOYS = {"low", "medium"}
# The DORA capability each rule applies (narrate/capabilities.py; it must fit the rule's metric).
CAPABILITY_OF = {
    "review": "streamlining change approval",
    "coding": "trunk-based development",
    "deploy_wait": "continuous delivery",
    "failures": "test automation",
    "recovery": "deployment automation",
    "rework": "learning culture",
    "frequency": "deployment automation",
    "regression": "visibility of work in the value stream",
    "data_gaps": "visibility of work in the value stream",
    "slowest": "visibility of work in the value stream",
}


def n(value: float | int) -> str:
    """A fact value as text: whole numbers without a decimal point.

    >>> n(20.0), n(8.3), n(12)
    ('20', '8.3', '12')
    """
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def hours(value: float) -> str:
    """A duration from the facts as people read it: "5 hours", "3.5 days", "24.6 weeks"."""
    return humanize.duration(value)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# What each metric's verdict counts, for "too few … to judge".
SAMPLE_NOUNS = {
    "deployment_frequency": "deployments",
    "lead_time": "deployments with lead times",
    "change_failure_rate": "deployments",
    "recovery_time": "recoveries",
    "rework_rate": "deployments",
}
MOVED = ("improved", "worsened")
TREND_WORDS = {"improved": "improving", "worsened": "worsening"}


def _unclear(f: _Facts, metric: str) -> str:
    """How to word a move the verdict against the previous window does not back."""
    if f.verdict(metric) == "no clear change":
        return "within normal variation"
    return f"too few {SAMPLE_NOUNS[metric]} to judge"


@dataclass
class _Facts:
    """Read-only accessors over the facts document, so rules read like sentences."""

    raw: dict[str, Any]

    def metric(self, name: str) -> dict[str, Any]:
        return self.raw["metrics"][name]

    def cur(self, name: str, key: str) -> Any:
        return (self.metric(name)["current"] or {}).get(key)

    def prev(self, name: str, key: str) -> Any:
        return (self.metric(name)["previous"] or {}).get(key)

    def tier(self, name: str) -> str | None:
        return self.metric(name)["tier"]

    def verdict(self, name: str, against: str = "previous") -> str:
        """The metric's verdict against the `previous` window or the `baseline`."""
        return (self.metric(name).get("verdict") or {}).get(against) or "too little data"

    @property
    def label(self) -> str:
        return self.raw["window"]["label"]

    @property
    def previous_label(self) -> str | None:
        return self.raw["previous_window"]

    @property
    def deployments(self) -> int:
        return self.cur("deployment_frequency", "deployments") or 0

    @property
    def releases(self) -> bool:
        """Deployments are release tags: speak of releases and release cadence."""
        return (self.raw.get("deployment_source") or {}).get("kind") == "release_tags"

    @property
    def noun(self) -> str:
        return "release" if self.releases else "deployment"

    def label_of(self, metric: str) -> str:
        """The metric's name as the reader knows it ("release frequency" for release tags)."""
        if metric == "deployment_frequency" and self.releases:
            return "release frequency"
        return LABELS[metric]

    def data(self, key: str) -> int:
        return (self.raw.get("data") or {}).get(key) or 0

    @property
    def incidents_known(self) -> bool:
        """Incidents are recorded for the scope (so incident practice can be discussed)."""
        return bool(self.data("incidents_recorded") or self.raw["incidents"]["opened"])

    def cadence(self, side: str = "current") -> str | None:
        """The deployment rate in the unit where it reaches one: "8 per year"."""
        section = self.metric("deployment_frequency")[side] or {}
        cadence = section.get("cadence")
        if not cadence:
            return None
        return f"{n(cadence['value'])} per {cadence['per']}"

    @property
    def breakdown(self) -> dict[str, Any]:
        return self.raw["lead_time_breakdown"]["current"] or {}

    def stage(self, stage: str) -> tuple[float | None, float | None]:
        """(median hours, share of the path in percent) of a lead-time stage."""
        b = self.breakdown
        return b.get(f"{stage}_hours"), (b.get("share_pct") or {}).get(stage)

    @property
    def scope(self) -> str:
        s = self.raw["scope"]
        if s["kind"] == "tenant":
            return f"The {s['name']} organisation"
        return f"{s['kind'].capitalize()} {s['name']}"


@dataclass
class _Candidate:
    key: str
    score: float
    recommendation: Recommendation


# ---------------------------------------------------------------- summary


def _sentence_deployments(f: _Facts) -> str:
    what = "releases" if f.releases else "production deployments"
    if f.deployments == 0:
        return (
            f"{f.scope} made no {what} in {f.label}, so change failure "
            "rate, recovery time and rework rate have no data for this window."
        )
    days = f.cur("deployment_frequency", "deployment_days_pct")
    if f.releases:
        text = f"{f.scope} made {plural(f.deployments, 'release')} in {f.label}"
    else:
        text = f"{f.scope} shipped {plural(f.deployments, 'production deployment')} in {f.label}"
    extras = []
    cadence = (f.metric("deployment_frequency")["current"] or {}).get("cadence") or {}
    # "2 releases in 2025 (2 per year)" says nothing twice: the rate only when it differs.
    if cadence and cadence["value"] != f.deployments:
        extras.append(f.cadence() or "")
    if days is not None and not f.releases:
        extras.append(f"deploying on {n(days)}% of days")
    if extras:
        text += f" ({', '.join(extras)})"
    tier = f.tier("deployment_frequency")
    return text + (f", {tier} for deployment frequency." if tier else ".")


def _sentence_lead_time(f: _Facts) -> str | None:
    median = f.cur("lead_time", "median_hours")
    if median is None:
        if f.deployments == 0:
            return None
        return "No shipped commit had a known commit time, so lead time has no data."
    p90 = f.cur("lead_time", "p90_hours")
    if f.releases:
        # "lead time" last: the claim checker ties "up from …" to the nearest metric named.
        text = f"Measured to each release, the median lead time was {hours(median)}"
    else:
        text = f"The median commit reached production in {hours(median)}"
    if p90 is not None:
        text += f" (p90 {hours(p90)})"
    tier = f.tier("lead_time")
    if tier:
        text += f", {tier} tier for lead time"
    change = f.metric("lead_time")["change"]
    before = f.prev("lead_time", "median_hours")
    if change["direction"] in MOVED and before is not None:
        worsened = change["direction"] == "worsened"
        # "up from 3 days" says nothing next to a median written as "3 days".
        if hours(before) == hours(median):
            return text + "."
        text += f"; {'up' if worsened else 'down'} from {hours(before)} in {f.previous_label}"
        if f.verdict("lead_time") == change["direction"]:
            text += _stage_reason(f, worsened)
        else:
            text += f", {_unclear(f, 'lead_time')}"
    return text + "."


def _stage_reason(f: _Facts, worsened: bool) -> str:
    """Which lead-time stage moved most in the same direction as lead time, as a clause."""
    stage_change = f.raw["lead_time_breakdown"]["change"]
    moves = {
        k.removesuffix("_hours"): v
        for k, v in stage_change.items()
        if v is not None and (v > 0 if worsened else v < 0)
    }
    if not moves:
        return ""
    stage = max(moves, key=lambda s: abs(moves[s]))
    now_hours, _ = f.stage(stage)
    verb = "grew" if worsened else "shrank"
    text = f", mostly in {stage}, which {verb} by {hours(abs(moves[stage]))}"
    if now_hours is not None:
        text += f" to {hours(now_hours)}"
    return text


def _sentence_stability(f: _Facts) -> str | None:
    rate = f.cur("change_failure_rate", "rate_pct")
    if rate is None:
        return None
    failed = f.cur("change_failure_rate", "failed_deployments")
    text = f"{n(rate)}% of {f.noun}s failed ({failed} of {f.deployments})"
    recovery = f.cur("recovery_time", "median_hours")
    if recovery is not None:
        if f.releases:
            text += f" and a failed release was replaced in a median of {hours(recovery)}"
        else:
            text += f" and service was restored in a median of {hours(recovery)}"
    rework = f.cur("rework_rate", "rate_pct")
    # "none" is a count claim: it rests on the count, not on a rate that rounds to 0%.
    if rework is not None and f.cur("rework_rate", "rework_deployments") == 0:
        text += "; none was an unplanned fix"
    elif rework is not None:
        text += f"; {n(rework)}% of {f.noun}s were unplanned fixes"
    return text + "."


def _value(f: _Facts, metric: str, side: str) -> str | None:
    """The headline value of a metric on one side (`current`/`previous`) as quoted text."""
    section = f.metric(metric)[side]
    if not section:
        return None
    key = f.metric(metric)["headline"]
    value = section.get(key)
    if value is None:
        return None
    if key == "rate_pct":
        return f"{n(value)}%"
    if key == "per_week":
        cadence = section.get("cadence")
        if cadence:
            count, per = cadence["value"], cadence["per"]
            return f"{n(count)} {f.noun if count == 1 else f.noun + 's'} per {per}"
        return (
            f"{n(value)} deployment per week" if value == 1 else f"{n(value)} deployments per week"
        )
    return hours(value)


def biggest_move(f: _Facts, exclude: tuple[str, ...] = ()) -> str | None:
    """The metric whose headline value changed most since the previous window: relative
    change in percent, or twice the percentage points for a rate (a 10-point swing in change
    failure rate matters as much as a 20% slower lead time); moves the verdict backs first."""
    best, best_size = None, (False, 0.0)
    for metric in LABELS:
        change = f.metric(metric)["change"]
        if metric in exclude or change["direction"] in (None, "unchanged"):
            continue
        size = abs(change["relative_pct"]) if change["relative_pct"] is not None else 0.0
        if change["unit"] and change["absolute"] is not None:
            size = max(size, abs(change["absolute"]) * 2)
        # A move the verdict backs outranks a larger one that is within normal variation.
        ranked = (f.verdict(metric) == change["direction"], size)
        if best is None or ranked > best_size:
            best, best_size = metric, ranked
    return best


def _sentence_move(f: _Facts) -> str | None:
    """The biggest move among the other metrics (lead time has its own sentence)."""
    metric = biggest_move(f, exclude=("lead_time",))
    if metric is None or f.previous_label is None:
        return None
    change = f.metric(metric)["change"]
    before, after = _value(f, metric, "previous"), _value(f, metric, "current")
    backed = f.verdict(metric) == change["direction"]
    verb = change["direction"] if backed else "went"
    text = (
        f"The biggest other move since {f.previous_label}: {f.label_of(metric)} "
        f"{verb} from {before} to {after}"
    )
    if metric in ("change_failure_rate", "rework_rate"):
        key = "failed_deployments" if metric == "change_failure_rate" else "rework_deployments"
        noun = f"failed {f.noun}" if metric == "change_failure_rate" else "unplanned fix"
        text += f" ({plural(f.cur(metric, key) or 0, noun)} of {f.deployments})"
    if not backed:
        text += f", {_unclear(f, metric)}"
    return text + "."


def _sentence_overall(f: _Facts) -> str | None:
    tiers = f.raw["tiers"]
    if not tiers["overall"]:
        return None
    text = f"Overall that is {tiers['overall']} performance"
    if tiers["overall_move"] == "up":
        text += f", up from {tiers['previous_overall']}"
    elif tiers["overall_move"] == "down":
        text += f", down from {tiers['previous_overall']}"
    return text + "."


def _summary(f: _Facts) -> str:
    parts = [
        _sentence_deployments(f),
        _sentence_lead_time(f),
        _sentence_stability(f),
        _sentence_move(f),
        _sentence_overall(f),
    ]
    return " ".join(p for p in parts if p)


# ---------------------------------------------------------------- highlights


def _over_windows(trend: dict[str, Any]) -> str:
    """How many windows a trend claim rests on: only those with data, and said so."""
    with_data, total = trend["windows_with_data"], trend["windows"]
    if with_data == total:
        return f"over {total} windows"
    # "over the 5 windows with data (of 12)": the claim counts what it rests on, in the form
    # the claim checker reads as a trend (narrate/claims.py).
    return f"over the {with_data} windows with data (of {total})"


def _highlights(f: _Facts) -> list[str]:
    out = []
    for metric in LABELS:
        label = f.label_of(metric)
        now = _value(f, metric, "current")
        if now is None:
            continue
        text = f"{label.capitalize()}: {now}"
        before = _value(f, metric, "previous")
        direction = f.metric(metric)["change"]["direction"]
        if before is not None and direction and direction != "unchanged":
            if f.verdict(metric) == direction:
                text += f" ({direction}, was {before})"
            else:
                text += f" (was {before}, {_unclear(f, metric)})"
        elif direction == "unchanged":
            text += " (unchanged)"
        tier = f.tier(metric)
        if tier:
            text += f"; {tier}"
        trend = f.metric(metric)["trend"]
        baseline = f.verdict(metric, "baseline")
        windows = f.metric(metric).get("verdict", {}).get("baseline_windows")
        # Only where the previous-window verdict agrees: issue 20's claim checker
        # (narrate/claims.py) judges every "improved"/"worsened" against the previous window.
        if baseline in MOVED and windows and f.verdict(metric) == baseline == direction:
            text += f"; {baseline} against the {windows} windows before"
            if trend.get("direction") == TREND_WORDS[baseline]:
                text += f", {trend['direction']} {_over_windows(trend)}"
        out.append(text + ".")
    largest = f.breakdown.get("largest_stage")
    if largest:
        stage_hours, share = f.stage(largest)
        if stage_hours is not None and share is not None:
            out.append(
                f"Largest lead-time stage: {STAGE_LABELS[largest]}, {hours(stage_hours)} "
                f"({n(share)}% of the median path)."
            )
    return out[:8]


# ---------------------------------------------------------------- recommendations

Rule = Callable[[_Facts], "_Candidate | None"]


def _rec(
    key: str,
    score: float,
    title: str,
    why: str,
    metric: str,
    evidence: list[str],
    capability: str | None = None,
) -> _Candidate:
    recommendation = Recommendation(
        title=title,
        why=why,
        metric=metric,  # type: ignore[arg-type]
        capability=capability or CAPABILITY_OF[key],  # type: ignore[arg-type]
        evidence=evidence,
    )
    return _Candidate(key, score, recommendation)


def _lead_time_evidence(f: _Facts) -> list[str]:
    median = f.cur("lead_time", "median_hours")
    return [f"lead time median: {hours(median)}"] if median is not None else []


def rule_review(f: _Facts) -> _Candidate | None:
    pickup, pickup_share = f.stage("pickup")
    review, review_share = f.stage("review")
    shares = [s for s in (pickup_share, review_share) if s is not None]
    longest = max((h for h in (pickup, review) if h is not None), default=0.0)
    if sum(shares) < RULES["review_share_pct"] or longest < RULES["review_min_hours"]:
        return None
    evidence = []
    if pickup is not None:
        evidence.append(f"pickup: {hours(pickup)} ({n(pickup_share)}% of the path)")
    if review is not None:
        evidence.append(f"review: {hours(review)} ({n(review_share)}% of the path)")
    return _rec(
        "review",
        sum(shares) + longest,
        "Set a review SLA and keep pull requests small",
        "Waiting for a first review and reviewing take a large share of each change's lead "
        "time. Agree on a "
        "first-review target (for example within a working day), make review part of the "
        "daily routine, and keep pull requests small so they are quick to review; DORA "
        "research links fast, lightweight review with shorter lead times.",
        "lead_time",
        evidence + _lead_time_evidence(f),
    )


def rule_coding(f: _Facts) -> _Candidate | None:
    coding, share = f.stage("coding")
    if coding is None or share is None:
        return None
    if share < RULES["coding_share_pct"] or coding < RULES["coding_min_hours"]:
        return None
    return _rec(
        "coding",
        share + coding / 4,
        "Work in smaller batches and merge to trunk daily",
        "A large share of the lead time passes before a pull request is even opened: work "
        "stays on "
        "branches for long. Slice features into changes that can merge within a day, hide "
        "unfinished work behind flags, and integrate into trunk often; small batches are one "
        "of the strongest predictors of delivery performance in the DORA research.",
        "lead_time",
        [f"coding: {hours(coding)} ({n(share)}% of the path)", *_lead_time_evidence(f)],
    )


def rule_deploy_wait(f: _Facts) -> _Candidate | None:
    deploy, share = f.stage("deploy")
    if deploy is None or share is None:
        return None
    if share < RULES["deploy_share_pct"] and deploy < RULES["deploy_min_hours"]:
        return None
    if f.releases:
        return _rec(
            "deploy_wait",
            share + deploy / 2,
            "Shorten the wait from merge to release",
            "Merged changes wait for the next release before users get them. Automate the "
            "release steps (changelog, build, publish from the tag) so a release is cheap "
            "enough to make whenever something worth shipping is merged.",
            "lead_time",
            [
                f"merge to release: {hours(deploy)} ({n(share)}% of the path)",
                *_lead_time_evidence(f),
            ],
            "continuous delivery",
        )
    return _rec(
        "deploy_wait",
        share + deploy / 2,
        "Deploy merged changes automatically",
        "Merged changes wait for a release before they reach production. A pipeline that "
        "deploys every merge to production (continuous delivery), with automated checks "
        "instead of a manual release train, removes that wait and keeps batches small.",
        "lead_time",
        [f"deploy: {hours(deploy)} ({n(share)}% of the path)", *_lead_time_evidence(f)],
    )


def rule_failures(f: _Facts) -> _Candidate | None:
    rate = f.cur("change_failure_rate", "rate_pct")
    if rate is None or rate < RULES["cfr_high_pct"]:
        return None
    failed = f.cur("change_failure_rate", "failed_deployments")
    evidence = [
        f"change failure rate: {n(rate)}% ({failed} of {f.deployments} {f.noun}s)",
    ]
    freq_tier = f.tier("deployment_frequency")
    if freq_tier in FEW_DEPLOYS:
        evidence.append(f"{f.noun} frequency: {f.deployments} {f.noun}s ({freq_tier})")
        return _rec(
            "failures",
            rate * 2,
            "Ship smaller, more frequent releases with automated tests",
            f"{f.noun.capitalize()}s are both infrequent and often failing: large batches "
            "carry more risk and are harder to diagnose. The DORA research finds speed and "
            "stability go together: release smaller changes more often, each covered by "
            "automated tests that run on every commit.",
            "change_failure_rate",
            evidence,
            "working in small batches",
        )
    return _rec(
        "failures",
        rate * 2,
        "Catch failures before production with automated tests and canary releases",
        "Deployments go out at a good pace, but too many of them fail. Strengthen the "
        "automated tests on the deployment path, add production-like checks before release, "
        "and roll out to a small share of traffic first (canary) so a bad change is stopped early.",
        "change_failure_rate",
        evidence,
    )


def rule_recovery(f: _Facts) -> _Candidate | None:
    median = f.cur("recovery_time", "median_hours")
    if median is None or median < RULES["recovery_slow_hours"]:
        return None
    evidence = [f"recovery time median: {hours(median)}"]
    p90 = f.cur("recovery_time", "p90_hours")
    if p90 is not None:
        evidence.append(f"recovery time p90: {hours(p90)}")
    if f.releases:
        return _rec(
            "recovery",
            40 + median / 2,
            "Make a fix release quick to publish",
            "A failed release stayed current for more than a day before the next one replaced "
            "it. Keep the release steps automated so a fix (or yanking the bad version) takes "
            "minutes, and say in the changelog which release it replaces.",
            "recovery_time",
            evidence,
            "deployment automation",
        )
    return _rec(
        "recovery",
        40 + median / 2,
        "Automate rollback and put risky changes behind feature flags",
        "Failed deployments take more than a day to recover. Make rolling back a single automated "
        "step, decouple release from deploy with feature flags so a bad change can be turned "
        "off without a new deployment, and alert on the symptoms users see.",
        "recovery_time",
        evidence,
    )


def rule_rework(f: _Facts) -> _Candidate | None:
    rate = f.cur("rework_rate", "rate_pct")
    if rate is None or rate < RULES["rework_high_pct"]:
        return None
    count = f.cur("rework_rate", "rework_deployments")
    evidence = [f"rework rate: {n(rate)}% ({count} of {f.deployments} {f.noun}s)"]
    if not f.incidents_known:
        # No incident is recorded: the unplanned fixes are rollbacks, and the advice is about
        # why changes had to be undone, not about incident reviews that never happened.
        return _rec(
            "rework",
            rate * 1.5,
            "Find out why changes are rolled back and stop the next one earlier",
            f"A large share of {f.noun}s undo an earlier one (rollbacks). Go through each "
            "rolled-back change: what check would have caught it before it shipped? Add that "
            "test or review step, and keep changes small so the faulty one is easy to find.",
            "rework_rate",
            evidence,
            "test automation",
        )
    return _rec(
        "rework",
        rate * 1.5,
        "Hold blameless post-incident reviews and fix root causes",
        "A large share of deployments are unplanned fixes (rollbacks and deploys made while "
        "an incident was open). Review each incident without blame, track the follow-up "
        "actions to done, and add the missing test or check so the same failure cannot ship "
        "twice.",
        "rework_rate",
        evidence,
    )


def _no_deployment(f: _Facts) -> _Candidate:
    """No deployment in the window: unreleased work when commits were made, else a check that
    deployments reach the store."""
    commits = f.data("commits_in_window")
    if f.releases:
        if commits:
            return _rec(
                "frequency",
                90,
                "Release the work that is waiting",
                f"No release was tagged in {f.label}, yet commits landed: users see none of "
                "them until the next release. A regular release cadence (for example monthly, "
                "automated from the tag to the published package) keeps each release small "
                "and every fix reaching users sooner.",
                "deployment_frequency",
                [f"releases in {f.label}: 0", f"commits in {f.label}: {commits}"],
                "working in small batches",
            )
        return _rec(
            "frequency",
            90,
            "Check that the release tags are the ones counted",
            f"Neither a release nor a commit was recorded in {f.label}. If the project did "
            "release, check that its tags match the configured release pattern; if it was a "
            "quiet period, there is nothing to act on here.",
            "deployment_frequency",
            [f"releases in {f.label}: 0", f"commits in {f.label}: {commits}"],
            "visibility of work in the value stream",
        )
    evidence = [f"deployments: {f.deployments}"]
    if commits:
        evidence.append(f"commits in {f.label}: {commits}")
    return _rec(
        "frequency",
        90,
        "Record every production deployment",
        f"No production deployment was recorded in {f.label}"
        + (", although commits were made. " if commits else ". ")
        + "If the team did deploy, send deployments from the pipeline (`insights record "
        "deployment` or the API) so the metrics can see them; if it did not, a first small "
        "automated deployment is the place to start.",
        "deployment_frequency",
        evidence,
        "visibility of work in the value stream",
    )


def rule_frequency(f: _Facts) -> _Candidate | None:
    if f.deployments == 0:
        return _no_deployment(f)
    tier = f.tier("deployment_frequency")
    days = f.cur("deployment_frequency", "deployment_days_pct")
    low_days = days is not None and days < RULES["deploy_days_low_pct"]
    if tier not in FEW_DEPLOYS and not low_days:
        return None
    if f.releases:
        evidence = [f"releases: {f.deployments} in {f.label}"]
        if f.cadence():
            evidence.append(f"release cadence: {f.cadence()}")
        return _rec(
            "frequency",
            (60 if tier in FEW_DEPLOYS else 30) + (100 - (days or 0)) / 10,
            "Release on a steady cadence, in small releases",
            "Releases are far apart, so each one bundles many changes and users wait long for "
            "fixes. Release cadence is not a deployment pipeline: a library need not release "
            "daily, but a predictable rhythm with the release steps automated (changelog, "
            "build, publish) keeps each release small and easy to adopt.",
            "deployment_frequency",
            evidence,
            "working in small batches",
        )
    evidence = [f"deployments: {f.deployments} in {f.label}"]
    if days is not None:
        evidence.append(f"days with a deployment: {n(days)}%")
    return _rec(
        "frequency",
        (60 if tier in FEW_DEPLOYS else 30) + (100 - (days or 0)) / 5,
        "Make deploying routine: every merged change, every day",
        "Deployments are rare, so each one carries many changes. Automate the path to "
        "production end to end and deploy each merged change on its own; frequent small "
        "deployments lower risk and shorten lead time at the same time.",
        "deployment_frequency",
        evidence,
    )


def rule_regression(f: _Facts) -> _Candidate | None:
    worst, worst_size = None, 0.0
    for metric in LABELS:
        change = f.metric(metric)["change"]
        if change["direction"] != "worsened" or change["relative_pct"] is None:
            continue
        if f.verdict(metric) != "worsened":
            continue  # within normal variation, or too few samples: not a regression to chase
        size = abs(change["relative_pct"])
        if change["unit"] and abs(change["absolute"] or 0) < RULES["regression_min_pp"]:
            continue  # a rate moving 9.7% → 12.9% is a third worse but still only 3 points
        if size >= RULES["regression_pct"] and size > worst_size:
            worst, worst_size = metric, size
    if worst is None:
        return None
    change = f.metric(worst)["change"]
    before, after = _value(f, worst, "previous"), _value(f, worst, "current")
    return _rec(
        "regression",
        50 + min(worst_size, 200) / 4,
        f"Find out what made {f.label_of(worst)} worse since {f.previous_label}",
        f"{f.label_of(worst).capitalize()} worsened sharply since the previous window. Look at "
        "what changed in that time (team changes, a large migration, a flaky pipeline, "
        "release freezes) before it becomes the new normal; the slowest changes listed in "
        "this report are a good place to start.",
        worst,
        [
            f"{f.label_of(worst)} in {f.previous_label}: {before}",
            f"{f.label_of(worst)} in {f.label}: {after}",
            f"change: {n(change['relative_pct'])}%",
        ],
    )


def rule_data_gaps(f: _Facts) -> _Candidate | None:
    unlinked = f.raw["incidents"]["without_deployment"] or 0
    if unlinked:
        opened = f.raw["incidents"]["opened"]
        return _rec(
            "data_gaps",
            35,
            "Link incidents to the deployments that caused them",
            "Some incidents could not be attributed to any production deployment, so the change "
            "failure rate and recovery time may understate problems. Record the deployment id "
            "when an incident is opened, or make sure every deployment is recorded.",
            "change_failure_rate",
            [f"incidents without a deployment: {unlinked} of {opened}"],
        )
    samples = f.cur("lead_time", "samples") or 0
    if f.deployments and samples < RULES["lead_time_min_samples"]:
        return _rec(
            "data_gaps",
            30,
            "Record which commits each deployment ships",
            "Too few shipped commits have a known commit time for lead time to be reliable. "
            "Import commits for each service (or list them on each deployment event) so every "
            "deployment contributes lead-time samples.",
            "lead_time",
            [f"lead-time samples: {samples}", f"deployments: {f.deployments}"],
        )
    return None


def rule_slowest(f: _Facts) -> _Candidate | None:
    slowest = f.raw["slowest_changes"]
    if not slowest or slowest[0].get("largest_stage") is None:
        return None
    top = slowest[0]
    stage = top["largest_stage"]
    return _rec(
        "slowest",
        10,
        "Walk through the slowest change with the team",
        f"The slowest change of {f.label} spent the longest part of its time in "
        f"{STAGE_LABELS[stage]}. Going through it together usually shows a concrete "
        "obstacle (a missing reviewer, a manual step, an unclear requirement) worth removing.",
        "lead_time",
        [
            f"{top['ref']}: {hours(top['lead_time_hours'])} in total",
            f"{stage}: {hours(top[f'{stage}_hours'])}",
        ],
    )


RULE_FUNCTIONS: tuple[Rule, ...] = (
    rule_review,
    rule_coding,
    rule_deploy_wait,
    rule_failures,
    rule_recovery,
    rule_rework,
    rule_frequency,
    rule_regression,
    rule_data_gaps,
    rule_slowest,
)

_SUSTAIN = {
    "deployment_frequency": (
        "Keep deployments small and frequent",
        "Deployment frequency is healthy; protect it by keeping the pipeline fast and green "
        "and by deploying each change on its own rather than batching.",
        "working in small batches",
    ),
    "lead_time": (
        "Watch the slow tail of lead time, not only the median",
        "The median is in good shape; the p90 shows the changes that still wait. Review the "
        "slowest changes in each report so the tail does not grow unnoticed.",
        "visibility of work in the value stream",
    ),
    "change_failure_rate": (
        "Keep failures rare as deployment volume grows",
        "Few deployments fail. Keep every fix paired with a test so the rate stays low as the "
        "team ships more often.",
        "test automation",
    ),
    "recovery_time": (
        "Rehearse recovery so it stays fast",
        "Recovery is quick today. Practise rollbacks and keep runbooks current so the next "
        "failure is handled just as fast.",
        "documentation quality",
    ),
    "rework_rate": (
        "Keep unplanned work visible",
        "Unplanned fixes are a small share of deployments; keep tracking them so a change is "
        "noticed early.",
        "visibility of work in the value stream",
    ),
}
_IMPROVE = {
    "deployment_frequency": (
        "Automate the path to production",
        "Deployments are not yet routine. Automate build, test and deploy end to end so that "
        "shipping a change needs no manual step; DORA research ties deployment automation to "
        "higher deployment frequency.",
        "deployment automation",
    ),
    "lead_time": (
        "Shorten the path from commit to production",
        "Lead time is long compared with high performers. Map where changes wait (review, "
        "release, manual approvals) and remove the longest wait first; small batches and "
        "continuous integration shorten every stage.",
        "working in small batches",
    ),
    "change_failure_rate": (
        "Invest in automated testing on the deployment path",
        "Deployments fail more often than in high-performing teams. Automated tests that run "
        "on every change, and a production-like staging check, catch most failures earlier.",
        "test automation",
    ),
    "recovery_time": (
        "Make recovery a single-step operation",
        "Recovery is slower than in high-performing teams. Automate rollback, keep deployments "
        "small so the faulty change is easy to find, and alert on user-facing symptoms.",
        "deployment automation",
    ),
    "rework_rate": _SUSTAIN["rework_rate"],
}
# Release-tagged services: the same advice in terms of releases (index 0: improve, 1: keep),
# each (title, why, DORA capability).
_RELEASE = {
    "deployment_frequency": (
        (
            "Automate the release steps",
            "Releases are not yet routine. Automate changelog, build and publishing from the "
            "release tag so a release needs no manual step and can happen whenever it is due.",
            "deployment automation",
        ),
        (
            "Keep releases small and regular",
            "The release cadence is healthy; keep each release small so it stays easy to "
            "adopt and to roll back.",
            "working in small batches",
        ),
    ),
    "lead_time": (
        (
            "Shorten the path from commit to release",
            "Commits wait long before a release ships them. Release when a batch of changes "
            "is ready rather than on a distant milestone, and automate the release steps so "
            "a release is cheap; small batches shorten every stage.",
            "working in small batches",
        ),
        _SUSTAIN["lead_time"],
    ),
    "change_failure_rate": (
        (
            "Test releases before they are tagged",
            "Releases are undone more often than they should be. Run the full test matrix and "
            "a pre-release (release candidate) before tagging the final release.",
            "test automation",
        ),
        (
            "Keep failed releases rare as the cadence grows",
            "Few releases are undone. Keep every fix paired with a test so that stays true.",
            "test automation",
        ),
    ),
}
_TIER_RANK = {"low": 0, "medium": 1, "high": 2, "elite": 3, None: 4}


def _filler(f: _Facts, metric: str) -> _Candidate | None:
    """Advice for a metric no rule spoke about: improve it (low/medium) or keep it."""
    value = _value(f, metric, "current")
    if value is None:
        return None
    tier = f.tier(metric)
    title, why, capability = (_IMPROVE if tier in FEW_DEPLOYS else _SUSTAIN)[metric]
    if f.releases and metric in _RELEASE:
        title, why, capability = _RELEASE[metric][0 if tier in FEW_DEPLOYS else 1]
    evidence = [f"{f.label_of(metric)}: {value}" + (f" ({tier})" if tier else "")]
    if metric == "lead_time" and f.cur("lead_time", "p90_hours") is not None:
        evidence.append(f"lead time p90: {hours(f.cur('lead_time', 'p90_hours'))}")
    return _rec(f"filler_{metric}", 0, title, why, metric, evidence, capability)


def _no_deployments(f: _Facts) -> list[Recommendation]:
    """Nothing shipped: advice on the work waiting and on the data that is actually missing
    (never "send commits" when commits are stored, never incident advice without incidents)."""
    frequency = rule_frequency(f)
    assert frequency is not None  # fires whenever there are no deployments
    out = [frequency.recommendation]
    noun = f.noun
    if not f.data("commits_recorded"):
        out.append(
            Recommendation(
                title="Send commits and pull requests for each service",
                why=f"Lead time is measured from commit to production {noun}; with commits "
                f"and pull requests recorded, the next {noun} will show where changes wait.",
                metric="lead_time",
                capability="visibility of work in the value stream",
                evidence=[f"commits recorded: {f.data('commits_recorded')}"],
            )
        )
    elif not f.data("changes_recorded") and not f.releases:
        out.append(
            Recommendation(
                title="Collect pull requests to see where changes wait",
                why="Commits are recorded, so lead time will be measured at the next deployment; "
                "pull or merge requests (a GitHub or GitLab source) add the breakdown into "
                "coding, pickup, review and deploy.",
                metric="lead_time",
                capability="visibility of work in the value stream",
                evidence=[
                    f"commits recorded: {f.data('commits_recorded')}",
                    f"pull requests recorded: {f.data('changes_recorded')}",
                ],
            )
        )
    before = f.prev("lead_time", "median_hours")
    if before is not None and f.previous_label:
        out.append(
            Recommendation(
                title=f"Keep the next {noun} small",
                why=f"Commits wait longer the longer a {noun} is put off. The last window with "
                f"a {noun} gives the lead time to beat: ship the waiting work in small steps "
                "rather than in one large batch.",
                metric="lead_time",
                capability="working in small batches",
                evidence=[f"lead time median in {f.previous_label}: {hours(before)}"],
            )
        )
    opened = f.raw["incidents"]["opened"] or 0
    if not f.incidents_known:
        out.append(
            Recommendation(
                title=(
                    "Record a broken release as an incident of that release"
                    if f.releases
                    else "Record incidents with the deployment that caused them"
                ),
                why=(
                    "No incident is recorded, so change failure rate can only count releases "
                    "that were rolled back. Label the issues that report a broken release as "
                    "incidents (a GitHub or GitLab source) so a bad release is counted."
                    if f.releases
                    else "Change failure rate and recovery time are computed from incidents "
                    "linked to deployments; recording both from the start makes the first "
                    "numbers trustworthy."
                ),
                metric="change_failure_rate",
                capability="visibility of work in the value stream",
                evidence=[f"incidents recorded: {f.data('incidents_recorded')}"],
            )
        )
    elif opened:
        out.append(
            Recommendation(
                title=f"Link this window's incidents to the {noun} that caused them",
                why=f"Incidents were opened while no {noun} was recorded in the window; each "
                f"one is blamed on the latest earlier {noun} unless its deployment id is given.",
                metric="change_failure_rate",
                capability="visibility of work in the value stream",
                evidence=[f"incidents opened in {f.label}: {opened}"],
            )
        )
    earlier = f.prev("deployment_frequency", "deployments")
    if len(out) < 3 and f.previous_label and earlier:
        out.append(
            Recommendation(
                title=f"Compare with {f.previous_label}",
                why=f"The window before had {noun}s; if this quiet window was planned (a "
                "freeze, a holiday), nothing needs to change; if not, find what held the "
                f"{noun}s back.",
                metric="deployment_frequency",
                capability="visibility of work in the value stream",
                evidence=[f"{noun}s in {f.previous_label}: {earlier}"],
            )
        )
    return out[:5]


def _fold_regression(fired: list[_Candidate]) -> list[_Candidate]:
    """A specific rule on the regressed metric says more than "find out what got worse": the
    regression's before/after evidence moves onto it (and raises its score) instead."""
    regression = next((c for c in fired if c.key == "regression"), None)
    if regression is None:
        return fired
    metric = regression.recommendation.metric
    specific = [
        c
        for c in fired
        if c.recommendation.metric == metric and c.key not in ("regression", "slowest")
    ]
    if not specific:
        return fired
    target = max(specific, key=lambda c: c.score)
    evidence = target.recommendation.evidence + regression.recommendation.evidence[:2]
    target.recommendation = target.recommendation.model_copy(update={"evidence": evidence[:6]})
    target.score = max(target.score, regression.score)
    return [c for c in fired if c is not regression]


def recommendations(f: _Facts) -> list[Recommendation]:
    """3–5 recommendations: triggered rules by score, then fillers for uncovered metrics."""
    if f.deployments == 0:
        return _no_deployments(f)
    fired = [c for rule in RULE_FUNCTIONS if (c := rule(f)) is not None]
    fired = _fold_regression(fired)
    fired.sort(key=lambda c: c.score, reverse=True)
    chosen = fired[:5]
    covered = {c.recommendation.metric for c in chosen}
    for metric in sorted(LABELS, key=lambda m: _TIER_RANK[f.tier(m)]):
        if len(chosen) >= 3:
            break
        candidate = None if metric in covered else _filler(f, metric)
        if candidate is not None:
            chosen.append(candidate)
    return [c.recommendation for c in chosen]


def narrate(facts: dict[str, Any]) -> Narrative:
    """The built-in narrative for a facts document (same schema as the LLM providers').

    >>> narrate(build_facts(report)).recommendations[0].metric     # doctest: +SKIP
    'lead_time'
    """
    f = _Facts(facts)
    return Narrative(
        summary=_summary(f),
        highlights=_highlights(f),
        recommendations=recommendations(f),
    )


def as_result(
    facts: dict[str, Any], outcome: str = "builtin", reason: str | None = None
) -> NarrativeResult:
    """The built-in narrative for `facts` as a result (outcome `builtin`, or `fallback` /
    `over_budget` with the reason no model wrote it). It must pass the checker: it quotes only
    facts, so a failure is a bug here, never a user error."""
    narrative = narrate(facts)
    errors = check(narrative, facts) + trend_claims.check(narrative, facts)
    if errors:
        raise AssertionError(f"built-in narrative failed its own check: {errors[0]}")
    return NarrativeResult(
        narrative=narrative,
        provider="builtin",
        model=None,
        prompt_version=VERSION,
        outcome=outcome,  # type: ignore[arg-type]
        reason=reason,
    )
