"""The few verbs every entry point composes: store events, sync, compute, narrate, deliver.

The CLI, the HTTP API and the scheduler call these functions and never each other. Each verb
takes an explicit session or engine and returns data; printing is the caller's business.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from insights.collect.events import AnyEvent
from insights.config import TenantConfig
from insights.errors import NotFound, UserError
from insights.metrics import windows as metric_windows
from insights.metrics.result import MetricReport, RecordedData, Scope, Window
from insights.model import ChangeEvent, CommitEvent, CommitRows, DeploymentEvent, IncidentEvent
from insights.narrate.schema import NarrativeResult
from insights.store import read_cache, write_reach
from insights.store.models import Service
from insights.store.repository import DeliveryFrames, TenantRepository, UpsertCounts

if TYPE_CHECKING:
    from insights.metrics.compute import Prepared
    from insights.metrics.result import WindowMetrics
    from insights.metrics.verdicts import WindowSample

KINDS = ("commit", "change", "deployment", "incident")
PROGRESS_STEP = 5000


@dataclass
class StoreResult:
    """What storing a batch of events did."""

    counts: dict[str, UpsertCounts] = field(
        default_factory=lambda: {kind: UpsertCounts() for kind in KINDS}
    )
    new_services: list[str] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return sum(c.total for c in self.counts.values())


def store_events(
    repo: TenantRepository,
    events: Sequence[AnyEvent],
    *,
    create_services: bool,
    tenant_config: TenantConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> StoreResult:
    """Upsert `events` for the repository's tenant, inside the caller's transaction.

    Unknown services are created when `create_services` (CLI import/record) and are a NotFound
    error otherwise (API). Commits are written before deployments so links find their commits.
    """
    result = StoreResult()
    by_service: dict[str, list[AnyEvent]] = defaultdict(list)
    for event in events:
        by_service[event.service].append(event)
    known = _service_ids(repo, by_service, result, create_services, tenant_config)
    # per service, the earliest time whose stored results the batch may change
    reached: dict[int | None, datetime] = {}
    changed = False
    for name, batch in sorted(by_service.items()):  # one lock order across batches
        service_id = known[name]
        for start in range(0, len(batch), PROGRESS_STEP):
            part = batch[start : start + PROGRESS_STEP]
            typed: dict[type, list] = defaultdict(list)
            for event in part:
                typed[type(event)].append(event)
            keys = write_reach.keys_of(part)
            # once a batch reaches every window of the service, the rest need not be asked
            unbounded = reached.get(service_id) == read_cache.BEGINNING
            before = None if unbounded else write_reach.reach(repo, service_id, keys)
            counts = {
                "commit": repo.upsert_commits(service_id, typed[CommitEvent]),
                "change": repo.upsert_changes(service_id, typed[ChangeEvent]),
                "deployment": repo.upsert_deployments(service_id, typed[DeploymentEvent]),
                "incident": repo.upsert_incidents(service_id, typed[IncidentEvent]),
            }
            for kind, count in counts.items():
                result.counts[kind] += count
            if any(c.new or c.updated for c in counts.values()):
                changed = True
                after = None if unbounded else write_reach.reach(repo, service_id, keys)
                at = write_reach.earliest(reached.get(service_id), before, after)
                if at is not None:
                    reached[service_id] = at
            if progress:
                progress(len(part))
    if result.new_services:  # a new service is in the tenant's (and maybe a team's) scope
        reached[None] = read_cache.BEGINNING
    if changed or result.new_services:
        read_cache.bump(repo.session, repo.tenant_id, reached)  # what they reach is stale
    return result


def store_commit_rows(
    repo: TenantRepository,
    batch: CommitRows,
    *,
    tenant_config: TenantConfig | None = None,
) -> StoreResult:
    """`store_events(repo, batch.events(), create_services=True, …)` for a batch of commits in
    their compact form (a bulk ingest): the same rows and counts, without an event per commit.
    """
    result = StoreResult()
    if not batch.rows:
        return result
    service_id = _service_ids(repo, [batch.service], result, True, tenant_config)[batch.service]
    keys = write_reach.Keys(shas=[row[0].decode() for row in batch.rows])
    before: list[datetime | None] = []
    counts = repo.insert_commit_rows(
        service_id,
        batch,
        PROGRESS_STEP,
        lambda: before.append(write_reach.reach(repo, service_id, keys)),
    )
    result.counts["commit"] += counts
    # What the batch reaches, asked before and after as store_events asks per slice (for a
    # batch of new commits the same answer; with some rows unchanged, possibly earlier). Not
    # asked before when one COPY wrote the whole batch: none of its shas was stored, and for
    # commits that are not stored `reach` answers None (asking cost a scan of the service's
    # stored keys per batch while the table has no statistics, docs/sync.md).
    reached: dict[int | None, datetime] = {}
    if counts.new or counts.updated:
        if not before:  # the COPY inserted every row: their times are the batch's
            earliest_s = min(row[4] for row in batch.rows)
            keys.inserted_from = datetime.fromtimestamp(earliest_s, UTC)
        after = write_reach.reach(repo, service_id, keys)
        at = write_reach.earliest(*before, after)
        if at is not None:
            reached[service_id] = at
    if result.new_services:
        reached[None] = read_cache.BEGINNING
    if counts.new or counts.updated or result.new_services:
        read_cache.bump(repo.session, repo.tenant_id, reached)  # what they reach is stale
    return result


def _service_ids(
    repo: TenantRepository,
    names: Iterable[str],
    result: StoreResult,
    create_services: bool,
    tenant_config: TenantConfig | None,
) -> dict[str, int]:
    """Service ids by name; unknown services are created (noted in `result`) when
    `create_services`, a NotFound error otherwise."""
    known = repo.service_ids(names)
    for name in names:
        if name in known:
            continue
        if not create_services:
            raise NotFound(f"service {name!r}: not found in tenant {repo.tenant.name!r}")
        configured = tenant_config.service(name) if tenant_config else None
        service, _ = repo.ensure_service(
            name,
            team=configured.team if configured else None,
            production_pattern=configured.production_pattern if configured else None,
        )
        known[name] = service.id
        result.new_services.append(name)
    return known


def apply_org_config(session: Session, tenant: TenantConfig) -> TenantRepository:
    """Create or update the tenant, its teams and services from `insights.toml`."""
    repo = TenantRepository.open(session, tenant.name, create=True)
    repo.tenant.timezone = tenant.timezone
    for team in tenant.teams:
        repo.ensure_team(team.name)
    for service in tenant.services:
        repo.ensure_service(service.name, service.team, service.production_pattern)
    return repo


def scope_services(repo: TenantRepository, scope: Scope) -> list[str]:
    """Names of the services a scope covers; an unknown service or team is a NotFound error."""
    return [s.name for s in scope_service_rows(repo, scope)]


def scope_service_rows(repo: TenantRepository, scope: Scope) -> list[Service]:
    """The services a scope covers (`scope_services`, as rows)."""
    if scope.kind == "service":
        return [repo.require_service(scope.name)]
    if scope.kind == "team":
        team = repo.team(scope.name)
        if team is None:
            raise NotFound(f"team {scope.name!r}: not found in tenant {repo.tenant.name!r}")
        return [s for s in repo.services() if s.team_id == team.id]
    return repo.services()


def _report_windows(window: Window, history: int) -> tuple[list[Window], list[Window]]:
    """The windows a report shows (`history`, at least the previous one) and those its
    verdicts test (one more than the history, and at least the baseline before the window)."""
    from insights.metrics.verdicts import BASELINE_WINDOWS  # numpy: only where metrics are

    if history < 1:
        raise UserError(f"history {history}: must be at least 1 window")
    shown = metric_windows.history(window, max(history, 2))
    tested = metric_windows.history(window, max(history, BASELINE_WINDOWS) + 1)
    return shown, tested


def _report(
    prepared: Prepared,
    tenant: str,
    scope: Scope,
    services: list[str],
    window: Window,
    history: int,
    recorded: RecordedData | None = None,
) -> MetricReport:
    from insights.metrics import compute as metrics_compute

    shown, tested = _report_windows(window, history)
    samples = metrics_compute.window_samples(prepared, tested, services)
    metrics = {w: metrics_compute.window_metrics(prepared, w, services) for w in shown}
    return _assemble(
        prepared,
        tenant,
        scope,
        services,
        window,
        history,
        metrics,
        dict(zip(tested, samples, strict=True)),
        recorded,
    )


def _assemble(
    prepared: Prepared,
    tenant: str,
    scope: Scope,
    services: list[str],
    window: Window,
    history: int,
    metrics: dict[Window, WindowMetrics],
    samples: dict[Window, WindowSample],
    recorded: RecordedData | None,
) -> MetricReport:
    """The report from each shown window's metrics and each tested window's verdict sample
    (computed from `prepared` or stored); the window's own details come from `prepared`."""
    from insights.metrics import compute as metrics_compute

    shown, tested = _report_windows(window, history)
    verdicts = metrics_compute.sample_verdicts(
        [samples[w] for w in tested],
        tested,
        metrics_compute.first_deployment_ns(prepared, services),
        len(shown),
    )
    series = [
        metrics[w].model_copy(update={"verdicts": v}) for w, v in zip(shown, verdicts, strict=True)
    ]
    current = series[-1]
    return MetricReport(
        **dict(current),
        tenant=tenant,
        scope=scope,
        previous=series[-2],
        history=series[len(series) - history :],
        slowest_changes=metrics_compute.slowest_changes(prepared, window, services),
        deployments_by_day=metrics_compute.deployments_by_day(prepared, window, services),
        services=sorted(services),
        recorded=recorded or metrics_compute.recorded(prepared, window, services),
    )


def read_span(window: Window, history: int) -> Window:
    """The span of windows a report of `window` with `history` windows reads: from the first
    window its verdicts test (the baseline's first) to the end of `window`."""
    from insights.metrics.verdicts import BASELINE_WINDOWS  # numpy: only where metrics are

    tested = metric_windows.history(window, max(history, BASELINE_WINDOWS, 1) + 1)
    return Window(start=tested[0].start, end=window.end, label="span")


def compute_report(
    session: Session,
    tenant: str,
    scope: Scope,
    window: Window,
    history: int = 12,
    *,
    whole_history: bool = False,
) -> MetricReport:
    """The metric report of one scope and window: the window's metrics, the previous window,
    `history` windows (oldest first, ending with this one), the 5 slowest changes and the
    deployments per day.

    Earlier windows whose results are stored and no write since reaches are taken as stored
    (`store.read_cache.window_results`); the rest, from the first window not stored to the
    end of `window`, are computed from the rows those windows need (`store.window_read`; the
    whole history where only it gives exact results, or with `whole_history`), and the closed
    ones stored for the next read. Pure functions compute."""
    read = _ScopeRead.open(session, tenant, scope)
    if whole_history:
        from insights.metrics import compute as metrics_compute  # pandas: only where metrics are

        prepared = metrics_compute.prepare(read.repo.delivery_frames(read.services))
        return _report(prepared, tenant, read.scope, read.services, window, history)
    report, keep = _compute_report(read, window, history)
    read_cache.store(session, read.tenant_id, read.scope, keep)
    return report


@dataclass(frozen=True)
class _ScopeRead:
    """What a read of one scope looks up once: the tenant, its services' rows and ids, and
    the data version read before any row."""

    repo: TenantRepository
    scope: Scope
    services: list[str]
    rows: list[Service]
    version: int

    @classmethod
    def open(cls, session: Session, tenant: str, scope: Scope) -> _ScopeRead:
        repo = TenantRepository.open(session, tenant)
        if scope.kind == "tenant":
            scope = Scope(kind="tenant", name=tenant)
        rows = scope_service_rows(repo, scope)
        version = read_cache.data_version(session, repo.tenant_id)
        return cls(repo, scope, [r.name for r in rows], rows, version)

    @property
    def tenant_id(self) -> int:
        return self.repo.tenant_id

    @property
    def ids(self) -> list[int]:
        return [r.id for r in self.rows]


def _compute_report(
    read: _ScopeRead,
    window: Window,
    history: int,
    found: read_cache.StoredReads | None = None,
) -> tuple[MetricReport, list[read_cache.Stored]]:
    """The report, and the closed windows' results computed for it (for the caller to store
    with `read_cache.store`). `found`: what the caller already looked up as stored for the
    windows it tests."""
    from insights.metrics import compute as metrics_compute  # pandas: only where metrics are
    from insights.metrics.result import WindowMetrics
    from insights.metrics.verdicts import sample_from_json, sample_json
    from insights.store import window_read

    repo, scope, services, session = read.repo, read.scope, read.services, read.repo.session
    tenant = repo.tenant.name
    shown, tested = _report_windows(window, history)
    t, version, ids = repo.tenant_id, read.version, read.ids
    if found is None:
        found = read_cache.stored_reads(session, t, scope, None, tested[:-1], version, ids)
    stored = found.windows
    kept = 0  # the leading tested windows served as stored
    while kept < len(tested) - 1 and (tested[kept].start, tested[kept].end) in stored:
        kept += 1
    computed = tested[kept:]
    bounded = window_read.window_frames(repo, services, computed[0].start, window.end, read.rows)
    # what is stored before each computed window's end (the report's `recorded`)
    before: dict[Window, list[int]] = {}
    if bounded.frames is not None:
        prepared = metrics_compute.prepare(bounded.frames)
        within = window_read.recorded_between(repo, services, window.start, window.end, ids)
        previous = stored[(tested[kept - 1].start, tested[kept - 1].end)] if kept else {}
        if len(computed) == 1 and isinstance(previous.get("recorded"), list):
            before[window] = [a + b for a, b in zip(previous["recorded"], within, strict=True)]
        else:
            ends = [w.end for w in computed]
            counts = window_read.recorded_before(repo, services, ends, ids)
            before = {w: list(c) for w, c in zip(computed, counts, strict=True)}
        commits, changes, incidents = before[window]
        recorded: RecordedData | None = RecordedData(
            commits=commits, changes=changes, incidents=incidents, commits_in_window=within[0]
        )
    else:
        prepared = metrics_compute.prepare(repo.delivery_frames(services))
        recorded = None
        for w in computed:
            r = metrics_compute.recorded(prepared, w, services)
            before[w] = [r.commits, r.changes, r.incidents]
    metrics: dict[Window, WindowMetrics] = {}
    samples: dict[Window, WindowSample] = {}
    for w in tested[:kept]:
        data = stored[(w.start, w.end)]
        if w in shown:
            metrics[w] = WindowMetrics.model_validate(data["metrics"])
        samples[w] = sample_from_json(data["sample"])
    keep: list[read_cache.Stored] = []
    for w, sample in zip(
        computed, metrics_compute.window_samples(prepared, computed, services), strict=True
    ):
        samples[w] = sample
        metrics[w] = metrics_compute.window_metrics(prepared, w, services)
        payload = sample_json(sample)
        entry = read_cache.window_entry(
            w,
            version,
            {
                "metrics": metrics[w].model_dump(mode="json"),
                "sample": payload,
                "recorded": before[w],
            },
        )
        if entry is not None and payload is not None:
            keep.append(entry)
    report = _assemble(
        prepared, tenant, scope, services, window, history, metrics, samples, recorded
    )
    return report, keep


def metrics_document(session: Session, tenant: str, scope: Scope, window: Window) -> str:
    """The JSON document of `GET /api/v1/metrics` (this window and the previous one): the
    window's stored document while no write since reaches it (an open window's too: the next
    write into it reaches it), else computed and stored."""
    from insights.deliver.text import render_json

    read = _ScopeRead.open(session, tenant, scope)
    _, tested = _report_windows(window, 1)
    found = read_cache.stored_reads(
        session, read.tenant_id, read.scope, window, tested[:-1], read.version, read.ids
    )
    if found.body is not None:
        return found.body
    report, keep = _compute_report(read, window, 1, found)
    body = render_json(report)
    keep.append(read_cache.document(window, read.version, body))
    read_cache.store(session, read.tenant_id, read.scope, keep)
    return body


def compute_all(
    session: Session,
    tenant: str,
    window: Window,
    history: int = 12,
    frames: DeliveryFrames | None = None,
) -> list[MetricReport]:
    """Reports for every service, every team and the tenant over `window`; each is stored as
    a metric snapshot (the report's JSON document, replacing an earlier one of that window).
    `frames`: the tenant's delivery frames when the caller has already read them."""
    from insights.metrics import compute as metrics_compute

    repo = TenantRepository.open(session, tenant)
    prepared = metrics_compute.prepare(frames if frames is not None else repo.delivery_frames())
    scopes = [Scope(kind="service", name=s.name) for s in repo.services()]
    scopes += [Scope(kind="team", name=t.name) for t in repo.teams()]
    scopes.append(Scope(kind="tenant", name=tenant))
    reports = []
    for scope in scopes:
        services = scope_services(repo, scope)
        report = _report(prepared, tenant, scope, services, window, history)
        repo.save_snapshot(
            scope.kind, scope.name, window.start, window.end, report.model_dump(mode="json")
        )
        reports.append(report)
    return reports


def with_sources(report: MetricReport, tenant_config: TenantConfig) -> MetricReport:
    """`report` with what counts as a deployment of each of its services (from the config):
    the narrative and the report word a release-tagged library as "releases"."""
    from insights.deliver.coverage import deployment_sources

    sources = deployment_sources(tenant_config, report.services)
    return report.model_copy(update={"deployment_sources": sources})


@dataclass
class BuiltReports:
    """What `build_reports` wrote: one file per scope, the tenant's index, who narrated, and
    each report with the narrative it shows (for digests)."""

    window: Window
    paths: list[Path]
    index: Path
    outcomes: dict[str, int] = field(default_factory=dict)
    narrated: list[tuple[MetricReport, NarrativeResult]] = field(default_factory=list)


def build_reports(
    session: Session,
    tenant_config: TenantConfig,
    window: Window,
    out_dir: Path,
    *,
    generated_at: datetime | None = None,
    progress: Callable[[MetricReport], None] | None = None,
) -> BuiltReports:
    """Compute every service, team and tenant report of `window`, narrate each (cached
    narratives are reused), and write the HTML files and the tenant's index under `out_dir`."""
    from insights.deliver.coverage import coverage
    from insights.deliver.html import write_index, write_report
    from insights.narrate.service import narrate_reports
    from insights.timeutil import now

    generated_at = generated_at or now()
    frames = TenantRepository.open(session, tenant_config.name).delivery_frames()
    reports = [
        with_sources(r, tenant_config)
        for r in compute_all(session, tenant_config.name, window, frames=frames)
    ]
    covered = coverage(frames, tenant_config, window)
    paths, outcomes = [], Counter[str]()
    narrated = list(zip(reports, narrate_reports(session, tenant_config, reports), strict=True))
    for report, result in narrated:
        outcomes[f"{result.provider}:{result.outcome}"] += 1
        services = [covered[s] for s in report.services if s in covered]
        paths.append(write_report(out_dir, report, result, services, generated_at))
        if progress:
            progress(report)
    index = write_index(out_dir, tenant_config.name, generated_at)
    return BuiltReports(window, paths, index, dict(outcomes), narrated)
