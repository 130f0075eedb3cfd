"""A seeded, realistic demo organisation, emitted as canonical events.

Three teams, two services each, `WEEKS` weeks of history ending at the start of the current ISO
week (so the last complete week is the one a report covers):
- payments (checkout, billing) is **improving**: smaller pull requests, faster review, more
  deployments, fewer failures, faster recovery week after week;
- search (search-api, indexer) is **degrading**: review queues grow, deployments thin out,
  failures and recovery times rise; search-api has a rollback in the last week;
- platform (gateway, auth) is **steady**; gateway's incidents come from PagerDuty (REST API v2
  incident payloads, mapped by the PagerDuty collector's own mapping, linked to deployments by
  a `Deployment: <id>` note).

billing reverts a change in the last week: a `Revert "…"` pull request whose commit carries
git's `This reverts commit <sha>.`, shipped by the next deployment, which marks the deployment
that shipped the change as failed (the revert rule) with no incident at all.

Every service gets commits (branch commits and a merge commit per pull request), pull requests
with coding, pickup and review times, production deployments (each preceded by a staging
deployment of the same sha, listing the commits it ships), a few failed pipeline runs, and
incidents linked to the deployment that caused them (some left for attribution by time).
The same seed and the same week give the same events.

`local_repo_config` is the other demo: a real local clone read by the local-git collector
(`insights demo --repo PATH`).
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from insights.collect.events import AnyEvent
from insights.collect.pagerduty_map import map_incident
from insights.config import ServiceConfig, SourceConfig, TeamConfig, TenantConfig
from insights.metrics.result import Window
from insights.metrics.windows import current_week
from insights.model import ChangeEvent, CommitEvent, DeploymentEvent, IncidentEvent
from insights.store.models import Deployment
from insights.store.repository import TenantRepository
from insights.timeutil import iso

TENANT = "demo"
WEEKS = 12
SEED = 2026
TEAMS = {
    "payments": ("checkout", "billing"),
    "search": ("search-api", "indexer"),
    "platform": ("gateway", "auth"),
}
AUTHORS = ("ana", "bo", "chen", "dara", "eli", "femi", "gus", "hana", "ivo", "jun", "kai", "lea")
TITLES = (
    "Add retry with backoff to {svc} client",
    "Fix flaky test in {svc} integration suite",
    "Upgrade {svc} dependencies",
    "Split {svc} handler into smaller functions",
    "Add metrics for {svc} queue depth",
    "Remove dead feature flag from {svc}",
    "Cache lookups in {svc}",
    "Validate input in {svc} API",
    "Improve logging around {svc} timeouts",
    "Migrate {svc} config to TOML",
    "Handle empty results in {svc}",
    "Document {svc} runbook steps",
)
# A realistic hostile title: the report must show it as text, never run it.
HOSTILE_TITLE = "Escape <script>alert(1)</script> in search snippets"


@dataclass(frozen=True)
class Profile:
    """How a team works at the start (`a`) and end (`b`) of the period; linear in between."""

    prs_per_week: tuple[float, float]
    coding_hours: tuple[float, float]
    pickup_hours: tuple[float, float]
    review_hours: tuple[float, float]
    deploys_per_week: tuple[float, float]
    failure_rate: tuple[float, float]
    recovery_hours: tuple[float, float]

    def at(self, name: str, t: float) -> float:
        a, b = getattr(self, name)
        return a + (b - a) * t


PROFILES = {
    "payments": Profile((6, 10), (40, 10), (30, 4), (20, 5), (2, 9), (0.30, 0.05), (30, 1.5)),
    "search": Profile((8, 5), (12, 30), (4, 40), (6, 30), (7, 2), (0.05, 0.35), (1.5, 30)),
    "platform": Profile((7, 7), (16, 16), (6, 6), (8, 8), (5, 5), (0.10, 0.10), (3, 3)),
}


PAGERDUTY_SERVICE = "gateway"
PAGERDUTY_SERVICE_ID = "PGW7K2Q"
REVERT_SERVICE = "billing"


def demo_tenant_config(name: str = TENANT) -> TenantConfig:
    """The tenant configuration of the demo organisation (teams and their services)."""
    pagerduty = SourceConfig(
        kind="pagerduty", service_ids=[PAGERDUTY_SERVICE_ID], token_env="PAGERDUTY_TOKEN"
    )
    return TenantConfig(
        name=name,
        teams=[TeamConfig(name=team) for team in TEAMS],
        services=[
            ServiceConfig(
                name=service,
                team=team,
                incidents=[pagerduty] if service == PAGERDUTY_SERVICE else [],
            )
            for team, services in TEAMS.items()
            for service in services
        ],
    )


def _pagerduty_incident(
    service: str,
    number: int,
    opened: datetime,
    resolved: datetime | None,
    priority: str,
    deployment_id: str | None,
    title: str,
) -> IncidentEvent:
    """An incident as PagerDuty's REST API v2 returns it (and its notes), through the mapping
    the PagerDuty collector uses."""
    incident_id = "Q" + hashlib.sha1(f"{service}:{number}".encode()).hexdigest()[:12].upper()
    payload = {
        "id": incident_id,
        "type": "incident",
        "incident_number": 4000 + number,
        "title": title,
        "created_at": iso(opened),
        "status": "resolved" if resolved else "acknowledged",
        "resolved_at": iso(resolved) if resolved else None,
        "last_status_change_at": iso(resolved or opened),
        "urgency": "high" if priority in ("P1", "P2") else "low",
        "priority": {"id": f"PRIO{priority}", "type": "priority_reference", "summary": priority},
        "service": {"id": PAGERDUTY_SERVICE_ID, "type": "service_reference", "summary": service},
    }
    notes = (
        [{"id": f"N{number}", "content": f"Paged after the release.\nDeployment: {deployment_id}"}]
        if deployment_id
        else []
    )
    return map_incident(service, payload, notes)


@dataclass
class _Service:
    name: str
    team: str
    rng: random.Random
    events: list[AnyEvent] = field(default_factory=list)
    counter: int = 0
    head: str | None = None

    def sha(self) -> str:
        self.counter += 1
        return hashlib.sha1(f"{self.name}:{self.counter}".encode()).hexdigest()


def _hours(rng: random.Random, median: float) -> float:
    """A lognormal duration around `median` hours (delivery times have long tails)."""
    return max(0.1, median * math.exp(rng.gauss(0, 0.6)))


def _working_time(rng: random.Random, week_start: datetime) -> datetime:
    """A random moment in working hours (Mon–Fri, 09:00–18:00 UTC) of the week."""
    day = rng.randrange(5)
    minutes = rng.randrange(9 * 60, 18 * 60)
    return week_start + timedelta(days=day, minutes=minutes)


def _pull_requests(svc: _Service, profile: Profile, start: datetime, end: datetime) -> list[dict]:
    """Pull requests merged before `end`, with their branch commits (not yet on main)."""
    prs = []
    rng = svc.rng
    number = 100
    for w in range(WEEKS):
        t = w / (WEEKS - 1)
        week_start = start + timedelta(weeks=w)
        count = max(1, round(rng.gauss(profile.at("prs_per_week", t), 1.2)))
        for _ in range(count):
            number += 1
            opened = _working_time(rng, week_start)
            first_commit = opened - timedelta(hours=_hours(rng, profile.at("coding_hours", t)))
            first_review = opened + timedelta(hours=_hours(rng, profile.at("pickup_hours", t)))
            merged = first_review + timedelta(hours=_hours(rng, profile.at("review_hours", t)))
            if merged >= end:
                continue
            n_commits = rng.randint(1, 4)
            span = (opened - first_commit) / n_commits
            times = [first_commit + span * i for i in range(n_commits)]
            title = rng.choice(TITLES).format(svc=svc.name)
            prs.append(
                {
                    "id": str(number),
                    "title": title,
                    "opened": opened,
                    "first_commit": first_commit,
                    "first_review": first_review,
                    "approved": merged - timedelta(minutes=rng.randint(5, 90)),
                    "merged": merged,
                    "times": times,
                    "author": rng.choice(AUTHORS),
                }
            )
    prs.sort(key=lambda pr: pr["merged"])
    return prs


def _merge(svc: _Service, pr: dict) -> list[str]:
    """Emit the pull request's commits and merge commit onto main; returns all their shas."""
    shas = []
    parent = svc.head
    for i, when in enumerate(pr["times"]):
        sha = svc.sha()
        svc.events.append(
            CommitEvent(
                service=svc.name,
                sha=sha,
                committed_at=when,
                authored_at=when,
                parents=(parent,) if parent else (),
                author=pr["author"],
                message=f"{pr['title']} (part {i + 1})",
            )
        )
        shas.append(sha)
        parent = sha
    merge = svc.sha()
    svc.events.append(
        CommitEvent(
            service=svc.name,
            sha=merge,
            committed_at=pr["merged"],
            authored_at=pr["merged"],
            parents=tuple(p for p in (svc.head, shas[-1]) if p),
            author=pr["author"],
            message=f"Merge pull request #{pr['id']}: {pr['title']}",
        )
    )
    svc.head = merge
    shas.append(merge)
    pr["merge_sha"] = merge
    svc.events.append(
        ChangeEvent(
            service=svc.name,
            id=pr["id"],
            title=pr["title"],
            opened_at=pr["opened"],
            first_commit_at=pr["first_commit"],
            first_review_at=pr["first_review"],
            approved_at=pr["approved"],
            merged_at=pr["merged"],
            merge_sha=merge,
            commits=tuple(shas),
        )
    )
    return shas


MIN_GAP = timedelta(minutes=15)  # room for a revert pull request between two deployments


def _revert(svc: _Service, pr: dict, after: datetime) -> list[str]:
    """`git revert` of a shipped pull request's merge, as a `Revert "…"` pull request merged
    soon after `after`; returns the revert commit's sha."""
    sha = svc.sha()
    at = after + timedelta(minutes=1)
    svc.events.append(
        CommitEvent(
            service=svc.name,
            sha=sha,
            committed_at=at,
            authored_at=at,
            parents=(svc.head,) if svc.head else (),
            author=pr["author"],
            message=f'Revert "{pr["title"]}"\n\nThis reverts commit {pr["merge_sha"]}.',
        )
    )
    svc.head = sha
    svc.events.append(
        ChangeEvent(
            service=svc.name,
            id=f"{int(pr['id']) + 9000}",
            title=f'Revert "{pr["title"]}"',
            opened_at=at + timedelta(minutes=2),
            first_commit_at=at,
            first_review_at=at + timedelta(minutes=5),
            approved_at=at + timedelta(minutes=6),
            merged_at=at + timedelta(minutes=10),
            merge_sha=sha,
            commits=(sha,),
            reverts=pr["id"],
        )
    )
    return [sha]


def _deploy_times(svc: _Service, profile: Profile, start: datetime) -> list[datetime]:
    times = []
    for w in range(WEEKS):
        t = w / (WEEKS - 1)
        count = max(1, round(svc.rng.gauss(profile.at("deploys_per_week", t), 0.8)))
        times += [_working_time(svc.rng, start + timedelta(weeks=w)) for _ in range(count)]
    return sorted(times)


def _service_events(
    svc: _Service, profile: Profile, start: datetime, end: datetime, rollback: bool
) -> list[AnyEvent]:
    rng = svc.rng
    prs = _pull_requests(svc, profile, start, end)
    root = svc.sha()
    svc.events.append(
        CommitEvent(
            service=svc.name,
            sha=root,
            committed_at=start - timedelta(days=3),
            message="Initial import",
            author="ana",
        )
    )
    svc.head = root
    pending: list[str] = [root]
    deployed: list[str] = []  # production shas in order
    n_deploy = n_incident = 0
    last_week_start = end - timedelta(weeks=1)
    rollback_done = False
    revert_target: dict | None = None
    revert_done = False
    failure_debt = rng.random()
    merging: list[dict] = []  # merged since the last production deployment
    shipped: list[tuple[dict, datetime]] = []  # (pull request, deployed at)
    queue = list(prs)
    last_deploy = start
    for planned in _deploy_times(svc, profile, start):
        when = planned
        if not pending and queue and queue[0]["merged"] - planned < timedelta(days=2):
            # Nothing new to ship yet: deploy soon after the next merge instead.
            when = max(planned, queue[0]["merged"] + timedelta(minutes=rng.randint(30, 90)))
        if when >= end or when <= last_deploy:
            continue
        while queue and queue[0]["merged"] <= when - timedelta(minutes=20):
            merging.append(queue[0])
            pending += _merge(svc, queue.pop(0))
        if revert_target is not None and not revert_done and when - last_deploy > MIN_GAP:
            pending += _revert(svc, revert_target, max(last_deploy, when - timedelta(hours=1)))
            revert_done = True
        if not pending or svc.head is None:
            continue
        last_deploy = when
        t = min(1.0, max(0.0, (when - start) / (end - start)))
        n_deploy += 1
        dep_id = f"{svc.name}-prod-{n_deploy}"
        svc.events.append(
            DeploymentEvent(
                service=svc.name,
                id=f"{svc.name}-stg-{n_deploy}",
                environment="staging",
                sha=svc.head,
                started_at=when - timedelta(minutes=55),
                finished_at=when - timedelta(minutes=45),
                commits=tuple(pending),
            )
        )
        if rng.random() < 0.06:  # a failed pipeline run before the successful one
            svc.events.append(
                DeploymentEvent(
                    service=svc.name,
                    id=f"{dep_id}-attempt",
                    environment="production",
                    sha=svc.head,
                    status="failure",
                    started_at=when - timedelta(minutes=40),
                    finished_at=when - timedelta(minutes=30),
                )
            )
        svc.events.append(
            DeploymentEvent(
                service=svc.name,
                id=dep_id,
                environment="production",
                sha=svc.head,
                started_at=when - timedelta(minutes=12),
                finished_at=when,
                commits=tuple(pending),
            )
        )
        pending = []
        shipped_now = merging
        shipped += [(pr, when) for pr in merging]
        merging = []
        previous_sha = deployed[-1] if deployed else None
        deployed.append(svc.head)
        do_rollback = rollback and not rollback_done and previous_sha and when >= last_week_start
        # Error diffusion instead of coin flips: failures track the profile's rate closely,
        # so the weekly story (improving, degrading) is not drowned in noise.
        failure_debt += profile.at("failure_rate", t)
        failed = failure_debt >= 1
        if failed:
            failure_debt -= 1
        if do_rollback or failed:
            n_incident += 1
            opened = when + timedelta(minutes=rng.randint(10, 120))
            recovery = _hours(rng, profile.at("recovery_hours", t))
            resolved = opened + timedelta(hours=recovery)
            if do_rollback:
                resolved = opened + timedelta(minutes=45)
            # Every third incident is left for attribution by time.
            linked = dep_id if n_incident % 3 else None
            title = f"Elevated errors in {svc.name} after deploy"
            if svc.name == PAGERDUTY_SERVICE:
                incident = _pagerduty_incident(
                    svc.name,
                    n_incident,
                    opened,
                    resolved if resolved < end else None,
                    rng.choice(("P2", "P3", "P3")),
                    linked,
                    title,
                )
            else:
                incident = IncidentEvent(
                    service=svc.name,
                    id=f"INC-{svc.name}-{n_incident}",
                    opened_at=opened,
                    resolved_at=resolved if resolved < end else None,
                    severity=rng.choice(("sev2", "sev3", "sev3")),
                    deployment_id=linked,
                    title=title,
                )
            svc.events.append(incident)
            if do_rollback:
                rollback_done = True
                svc.events.append(
                    DeploymentEvent(
                        service=svc.name,
                        id=f"{svc.name}-prod-{n_deploy}-rollback",
                        environment="production",
                        sha=previous_sha,
                        started_at=opened + timedelta(minutes=20),
                        finished_at=opened + timedelta(minutes=30),
                        commits=(),
                    )
                )
                deployed.append(previous_sha)
        elif svc.name == REVERT_SERVICE and revert_target is None and when >= last_week_start:
            # a quiet deployment whose change the next deployment reverts: a failure that only
            # the history shows
            revert_target = shipped_now[0] if shipped_now else None
    for pr in queue:  # merged after the last deployment: on main, not yet in production
        _merge(svc, pr)
    if rollback:
        _retitle_slowest(svc, shipped, last_week_start)
    return svc.events


def _retitle_slowest(svc: _Service, shipped: list[tuple[dict, datetime]], since: datetime) -> None:
    """Give last week's slowest shipped change the hostile title, so the report shows it."""
    recent = [(pr, at) for pr, at in shipped if at >= since]
    if not recent:
        return
    slowest, _ = max(recent, key=lambda item: item[1] - item[0]["first_commit"])
    for i, event in enumerate(svc.events):
        if isinstance(event, ChangeEvent) and event.id == slowest["id"]:
            svc.events[i] = event.model_copy(update={"title": HOSTILE_TITLE})


def generate(now: datetime, seed: int = SEED) -> list[AnyEvent]:
    """All events of the demo organisation for the `WEEKS` weeks before `now`'s ISO week."""
    end = current_week(now).start
    start = end - timedelta(weeks=WEEKS)
    events: list[AnyEvent] = []
    for team, services in TEAMS.items():
        for name in services:
            rng = random.Random(f"{seed}:{name}")
            svc = _Service(name=name, team=team, rng=rng)
            events += _service_events(
                svc, PROFILES[team], start, end, rollback=name == "search-api"
            )
    return events


def local_repo_config(
    path: Path, tag_pattern: str | None = None, name: str = TENANT
) -> TenantConfig:
    """A one-service tenant reading a local clone: its release tags (those matching
    `tag_pattern`, else version-like tags; never pre-releases) are its production deployments
    (see `insights.collect.localgit.TagSelection`). The service is named after the directory."""
    service = re.sub(r"[^A-Za-z0-9._-]+", "-", path.resolve().name).strip("-._") or "repo"
    if not service[0].isalnum():
        service = f"repo-{service}"
    return TenantConfig(
        name=name,
        services=[
            ServiceConfig(
                name=service[:128],
                source=SourceConfig(kind="localgit", path=path, tag_pattern=tag_pattern),
            )
        ],
    )


def latest_deployment_window(session: Session, tenant: str) -> Window | None:
    """The ISO week of the tenant's newest successful deployment, or None without any."""
    repo = TenantRepository.open(session, tenant)
    newest = session.scalar(
        select(func.max(Deployment.finished_at)).where(
            Deployment.tenant_id == repo.tenant_id, Deployment.status == "success"
        )
    )
    return None if newest is None else current_week(newest)
