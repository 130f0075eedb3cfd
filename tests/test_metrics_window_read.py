"""The window-bounded read (`store.window_read`) gives byte-identical reports to the whole
history, on generated histories (hypothesis) and on real ones, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from insights import pipeline
from insights.deliver.text import render_json
from insights.metrics.result import Scope
from insights.metrics.windows import current_week, parse_window, week
from insights.model import parse_event
from insights.store import window_read
from insights.store.db import unit_of_work
from insights.store.repository import TenantRepository
from insights.timeutil import now

BASE = datetime(2025, 9, 1, tzinfo=UTC)  # a Monday: ISO 2025-W36
SPAN_MINUTES = 20 * 7 * 24 * 60  # 20 weeks of history
SERVICES = ("checkout", "search")
PATTERNS = {"checkout": None, "search": r"^prod"}  # search: prod-eu and prod-us count
ENVIRONMENTS = ("production", "production", "prod-eu", "prod-us", "staging")
_tenants = itertools.count()


def at(minutes: int) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


MINUTE = st.integers(min_value=0, max_value=SPAN_MINUTES)


def shipped(id_: str, sha: str, finished_at: str) -> dict:
    """A successful production deployment of checkout that lists `sha` alone."""
    return {
        "type": "deployment",
        "service": "checkout",
        "id": id_,
        "sha": sha,
        "environment": "production",
        "status": "success",
        "finished_at": finished_at,
        "commits": [sha],
    }


@st.composite
def histories(draw: st.DrawFn, graph: bool = False, reverts: bool = False) -> list[dict]:
    """Commits committed long before or just before they ship, deployments listing their
    commits (redeploys and rollbacks by sampling shas again), incidents linked, unlinked,
    long open or never resolved, changes merged early or late; `graph`: deployments without
    listed commits (the commit graph decides), `reverts`: revert commits."""
    events: list[dict] = []
    shas = [f"{n:040x}" for n in range(1, draw(st.integers(4, 24)) + 1)]
    for service in SERVICES:
        previous = None
        for sha in shas:
            committed = draw(MINUTE)
            message = "change"
            if reverts and previous and draw(st.integers(0, 9)) == 0:
                message = f'Revert "x"\n\nThis reverts commit {previous}.'
            events.append(
                {
                    "type": "commit",
                    "service": service,
                    "sha": sha,
                    "committed_at": at(committed),
                    "parents": [previous] if previous else [],
                    "message": message,
                }
            )
            previous = sha
    count = draw(st.integers(0, 30))
    for n in range(count):
        service = draw(st.sampled_from(SERVICES))
        event = {
            "type": "deployment",
            "service": service,
            "id": f"d{n}",
            "sha": draw(st.sampled_from(shas)),
            "environment": draw(st.sampled_from(ENVIRONMENTS)),
            "status": draw(st.sampled_from(["success", "success", "success", "failure"])),
            "finished_at": at(draw(MINUTE)),
        }
        if not graph or draw(st.booleans()):
            event["commits"] = draw(st.lists(st.sampled_from(shas), max_size=4, unique=True))
        events.append(event)
    for n in range(draw(st.integers(0, 8))):
        opened = draw(MINUTE)
        event = {
            "type": "incident",
            "service": draw(st.sampled_from(SERVICES)),
            "id": f"INC-{n}",
            "opened_at": at(opened),
        }
        if draw(st.integers(0, 3)):
            span = draw(st.sampled_from([30, 600, 3 * 24 * 60, 40 * 24 * 60]))
            event["resolved_at"] = at(opened + draw(st.integers(0, span)))
        if draw(st.booleans()):
            event["deployment_id"] = f"d{draw(st.integers(0, max(count, 1)))}"
        events.append(event)
    for n in range(draw(st.integers(0, 8))):
        opened = draw(MINUTE)
        event = {
            "type": "change",
            "service": draw(st.sampled_from(SERVICES)),
            "id": str(n),
            "title": f"change {n}",
            "opened_at": at(opened),
            "first_commit_at": at(max(opened - draw(st.integers(0, 600)), 0)),
            "commits": draw(st.lists(st.sampled_from(shas), max_size=3, unique=True)),
        }
        if draw(st.integers(0, 4)):
            event["merged_at"] = at(opened + draw(st.integers(0, 20 * 24 * 60)))
            if draw(st.integers(0, 3)):
                event["merge_sha"] = draw(st.sampled_from(shas))
        events.append(event)
    return events


def store(engine, events: list[dict]) -> str:
    tenant = f"t{next(_tenants)}"
    with unit_of_work(engine) as session:
        repo = TenantRepository.open(session, tenant, create=True)
        for service in SERVICES:
            repo.ensure_service(service, team="core", production_pattern=PATTERNS[service])
        pipeline.store_events(repo, [parse_event(e) for e in events], create_services=True)
    return tenant


def both(engine, tenant: str, scope: Scope, window, history: int = 1) -> tuple[str, str]:
    """(bounded, whole-history) JSON documents of one report, each checked field by field."""
    with unit_of_work(engine) as session:
        bounded = pipeline.compute_report(session, tenant, scope, window, history)
        full = pipeline.compute_report(session, tenant, scope, window, history, whole_history=True)
    assert bounded.model_dump(mode="json") == full.model_dump(mode="json")
    return render_json(bounded), render_json(full)


def took_bounded_path(engine, tenant: str, services: list[str], window, history: int) -> bool:
    span = pipeline.read_span(window, history)
    with unit_of_work(engine) as session:
        repo = TenantRepository.open(session, tenant)
        return window_read.window_frames(repo, services, span.start, span.end).frames is not None


WEEKS = st.integers(min_value=-16, max_value=24)  # from before the data to after it
SCOPES = st.sampled_from(
    [
        Scope(kind="service", name="checkout"),
        Scope(kind="service", name="search"),
        Scope(kind="team", name="core"),
        Scope(kind="tenant", name="tenant"),
    ]
)
# 15 generated histories per test and backend in the suite (each one runs every scope and
# window twice); hundreds per test were run while building it, and a deeper run is
# INSIGHTS_WINDOW_READ_EXAMPLES=500.
PROPERTY = settings(
    max_examples=int(os.environ.get("INSIGHTS_WINDOW_READ_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _window(offset_weeks: int, kind: str):
    day = BASE + timedelta(weeks=offset_weeks)
    if kind == "week":
        year, number, _ = day.isocalendar()
        return week(year, number)
    if kind == "month":
        return parse_window(f"{day.year}-{day.month:02d}", now())
    start = day + timedelta(hours=offset_weeks % 7)
    end = start + timedelta(days=10, minutes=offset_weeks % 5)
    return parse_window(f"{start.isoformat()}..{end.isoformat()}", now())


WINDOW_KINDS = st.sampled_from(["week", "week", "month", "range"])


@PROPERTY
@given(
    events=histories(),
    scope=SCOPES,
    offset=WEEKS,
    kind=WINDOW_KINDS,
    history=st.sampled_from([1, 12]),
)
def test_bounded_read_equals_the_whole_history(db, events, scope, offset, kind, history):
    tenant = store(db.engine, events)
    window = _window(offset, kind)
    bounded, full = both(db.engine, tenant, scope, window, history)
    assert bounded == full
    assert took_bounded_path(db.engine, tenant, list(SERVICES), window, history)


@PROPERTY
@given(
    events=histories(reverts=True),
    scope=SCOPES,
    offset=WEEKS,
    history=st.sampled_from([1, 12]),
    changes=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7), st.booleans()), max_size=4),
)
def test_revert_histories_are_read_bounded_and_exact(db, events, scope, offset, history, changes):
    """Revert commits (some reverting reverts) and reverting changes (by id or by title, some
    of them reverting a revert): the bounded read loads every revert, what it reverts and
    every deployment listing either, wherever they lie."""
    extra = []
    for n, (reverting, reverted, by_title) in enumerate(changes):
        base = next((e for e in events if e["type"] == "change" and e["id"] == str(reverted)), None)
        if base is None or "merged_at" not in base:
            continue
        revert = {
            **base,
            "id": f"r{n}",
            "title": f'Revert "{base["title"]}"' if by_title else f"undo {reverting}",
            "opened_at": base["merged_at"],
            "merged_at": base["merged_at"],
        }
        if not by_title:
            revert["reverts"] = str(reverted)
        revert.pop("merge_sha", None)
        revert["commits"] = base["commits"][-1:]
        extra.append(revert)
    tenant = store(db.engine, [*events, *extra])
    window = _window(offset, "week")
    bounded, full = both(db.engine, tenant, scope, window, history)
    assert bounded == full
    assert took_bounded_path(db.engine, tenant, list(SERVICES), window, history)


def _far_revert_events(kind: str) -> list[dict]:
    """c1 ships in week 1 (d1); weeks later d2 ships its revert: a revert commit, or a change
    reverting c1's change by id or by title."""
    c1, c2, c3 = (f"{n:040x}" for n in (1, 2, 3))
    message = f"Revert\n\nThis reverts commit {c1}." if kind == "commit" else "fix"
    events: list[dict] = [
        {"type": "commit", "service": "checkout", "sha": c1, "committed_at": at(60 * 24 * 7)},
        {
            "type": "commit",
            "service": "checkout",
            "sha": c2,
            "committed_at": at(61 * 24 * 7),
            "message": message,
        },
        {"type": "commit", "service": "checkout", "sha": c3, "committed_at": at(62 * 24 * 7)},
    ]
    for n, (sha, week_) in enumerate(((c1, 1), (c3, 3), (c2, 30))):
        events.append(shipped(f"d{n}", sha, at(week_ * 7 * 24 * 60 + 600)))
    if kind != "commit":
        events.append(
            {
                "type": "change",
                "service": "checkout",
                "id": "1",
                "title": "add cache",
                "opened_at": at(60),
                "merged_at": at(120),
                "merge_sha": c1,
                "commits": [c1],
            }
        )
        revert = {
            "type": "change",
            "service": "checkout",
            "id": "2",
            "title": 'Revert "add cache"' if kind == "title" else "undo",
            "opened_at": at(29 * 7 * 24 * 60),
            "merged_at": at(29 * 7 * 24 * 60 + 60),
            "merge_sha": c2,
            "commits": [c2],
        }
        if kind == "id":
            revert["reverts"] = "1"
        events.append(revert)
    return events


@pytest.mark.parametrize("kind", ["commit", "id", "title"])
def test_a_revert_shipped_months_later_fails_the_week_it_reverts(db, kind):
    """The week of the reverted deployment (failed, recovered months later) and the week of
    the revert (rework), each read bounded."""
    tenant = store(db.engine, _far_revert_events(kind))
    scope = Scope(kind="service", name="checkout")
    for offset, field in ((1, "failed_deployments"), (30, "rework_rate")):
        window = _window(offset, "week")
        bounded, full = both(db.engine, tenant, scope, window)
        assert bounded == full
        doc = json.loads(bounded)
        assert (doc["deployment_count"], doc[field]) == (1, 1), (offset, doc)
        assert took_bounded_path(db.engine, tenant, list(SERVICES), window, 1)


@PROPERTY
@given(events=histories(graph=True, reverts=True), scope=SCOPES, offset=WEEKS)
def test_graph_and_revert_histories_stay_exact(db, events, scope, offset):
    """Where the bounded read cannot be exact it reads the whole history: same bytes."""
    tenant = store(db.engine, events)
    bounded, full = both(db.engine, tenant, scope, _window(offset, "week"))
    assert bounded == full


@PROPERTY
@given(events=histories(), late=histories(), offset=st.integers(min_value=0, max_value=20))
def test_late_data_changes_the_bounded_read_as_it_changes_the_whole_history(
    db, events, late, offset
):
    """Records arriving after a first read (late, into a closed window, or renaming ids that
    exist) give the same bytes both ways."""
    tenant = store(db.engine, events)
    window = _window(offset, "week")
    scope = Scope(kind="tenant", name=tenant)
    both(db.engine, tenant, scope, window)
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, tenant)
        pipeline.store_events(repo, [parse_event(e) for e in late], create_services=True)
    bounded, full = both(db.engine, tenant, scope, window, 12)
    assert bounded == full


def test_changes_deployed_in_a_week_count_there_whenever_they_were_merged(db):
    """A change shipped from its branch in week 3 and merged a month later (its merge sha is
    what week 3 deployed), and one merged in week 1 whose merge sha never reaches production
    (it deploys with its last listed commit, in week 3): both are that week's changes, read
    bounded, as in the whole history; a change merged in week 3 that no deployment ships is
    no lead time anywhere."""
    c1, c2, c3 = (f"{n:040x}" for n in (1, 2, 3))
    week3 = 3 * 7 * 24 * 60
    events: list[dict] = [
        {"type": "commit", "service": "checkout", "sha": sha, "committed_at": at(minute)}
        for sha, minute in ((c1, 60), (c2, 120), (c3, week3))
    ]
    events.append(
        {
            "type": "deployment",
            "service": "checkout",
            "id": "d1",
            "sha": c2,
            "environment": "production",
            "status": "success",
            "finished_at": at(week3 + 600),
            "commits": [c1, c2],
        }
    )
    for number, merged, merge_sha, commits in (
        ("early-merge", 600, "f" * 40, [c1]),  # the squash sha never deploys
        ("late-merge", week3 + 40 * 24 * 60, c2, [c2]),  # deployed before it merged
        ("unshipped", week3 + 60, c3, [c3]),
    ):
        events.append(
            {
                "type": "change",
                "service": "checkout",
                "id": number,
                "title": number,
                "opened_at": at(30),
                "merged_at": at(merged),
                "merge_sha": merge_sha,
                "commits": commits,
            }
        )
    tenant = store(db.engine, events)
    window = _window(3, "week")
    scope = Scope(kind="service", name="checkout")
    bounded, full = both(db.engine, tenant, scope, window)
    assert bounded == full
    with unit_of_work(db.engine) as session:
        report = pipeline.compute_report(session, tenant, scope, window, 1)
    assert {c.id for c in report.slowest_changes} == {"early-merge", "late-merge"}
    assert took_bounded_path(db.engine, tenant, ["checkout"], window, 1)


def test_incidents_open_since_long_before_the_span_count_there(db):
    """An incident opened in week 1 and resolved in week 21, and one opened in week 2 and
    never resolved, are open through a read of week 20 whose span starts weeks after both
    opened (on PostgreSQL it finds the first by the service's longest incident): the
    week's deployments ship during them, read bounded as in the whole history; without
    them the week reads differently."""
    day = 24 * 60
    deployments = []
    for n in range(22):
        sha = f"{n + 1:040x}"
        deployments += [
            {"type": "commit", "service": "checkout", "sha": sha, "committed_at": at(n * 7 * day)},
            shipped(f"d{n}", sha, at(n * 7 * day + 60)),
        ]
    incidents = [
        {
            "type": "incident",
            "service": "checkout",
            "id": "long",
            "opened_at": at(7 * day + 120),
            "resolved_at": at(21 * 7 * day),
        },
        {"type": "incident", "service": "checkout", "id": "open", "opened_at": at(14 * day + 120)},
        {  # a short one long before: resolved before the span starts
            "type": "incident",
            "service": "checkout",
            "id": "short",
            "opened_at": at(30),
            "resolved_at": at(90),
        },
    ]
    window = _window(20, "week")
    assert pipeline.read_span(window, 1).start > BASE + timedelta(weeks=3)
    scope = Scope(kind="service", name="checkout")
    long, still_open, short = incidents
    documents = []
    for some in ([long, short], [still_open, short], [short]):
        tenant = store(db.engine, deployments + some)
        bounded, full = both(db.engine, tenant, scope, window)
        assert bounded == full
        assert took_bounded_path(db.engine, tenant, ["checkout"], window, 1)
        documents.append(json.loads(bounded))
    with_long, with_open, without = documents
    assert with_long["rework_rate"] != without["rework_rate"]
    assert with_open["rework_rate"] != without["rework_rate"]


ANY_HISTORY = st.one_of(histories(), histories(graph=True), histories(reverts=True))


@PROPERTY
@given(
    events=ANY_HISTORY,
    late=ANY_HISTORY,
    offset=st.integers(min_value=0, max_value=20),
    step=st.integers(min_value=-3, max_value=3),
)
def test_stored_reads_after_late_data_equal_the_whole_history(db, events, late, offset, step):
    """The served document (`pipeline.metrics_document`: stored documents and per-window
    results, invalidated by what each write reaches) after late records equals the whole
    history's, for the week read before the write and one a few weeks from it; histories
    with listed commits, from the commit graph, or with reverts."""
    tenant = store(db.engine, events)
    scope = Scope(kind="tenant", name=tenant)
    first, other = _window(offset, "week"), _window(offset + step, "week")
    for window in (first, other):
        with unit_of_work(db.engine) as session:
            pipeline.metrics_document(session, tenant, scope, window)
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, tenant)
        pipeline.store_events(repo, [parse_event(e) for e in late], create_services=True)
    for window in (other, first):
        with unit_of_work(db.engine) as session:
            served = pipeline.metrics_document(session, tenant, scope, window)
            full = pipeline.compute_report(session, tenant, scope, window, 1, whole_history=True)
        assert served == render_json(full)


def test_open_window_around_now_is_exact(db):
    """The week still open (ends after now), with deployments this week and an open incident."""
    today = now().replace(microsecond=0)
    events = []
    for n in range(12):
        events.append(
            {
                "type": "commit",
                "service": "checkout",
                "sha": f"{n + 1:040x}",
                "committed_at": (today - timedelta(days=40 - 3 * n)).isoformat(),
            }
        )
        finished = today - timedelta(days=36 - 3 * n, minutes=1)
        events.append(shipped(f"d{n}", f"{n + 1:040x}", finished.isoformat()))
    events.append(
        {
            "type": "incident",
            "service": "checkout",
            "id": "INC-1",
            "opened_at": (today - timedelta(days=20)).isoformat(),
        }
    )
    tenant = store(db.engine, events)
    window = current_week(today)
    assert window.end > today
    for scope in (Scope(kind="service", name="checkout"), Scope(kind="tenant", name=tenant)):
        bounded, full = both(db.engine, tenant, scope, window, 12)
        assert bounded == full
    assert took_bounded_path(db.engine, tenant, ["checkout"], window, 12)


@pytest.fixture(scope="module")
def demo_events():
    from insights import demo

    return demo.generate(DEMO_NOW)


DEMO_NOW = datetime(2026, 2, 11, 15, 30, tzinfo=UTC)


def test_demo_organisation_is_exact(sqlite_db, demo_events):
    """Every scope of the demo organisation, for a week and a quarter. The demo has reverts,
    so this checks the fallback to the whole history is taken where it must be."""
    from insights import demo

    with unit_of_work(sqlite_db.engine) as session:
        repo = pipeline.apply_org_config(session, demo.demo_tenant_config())
        pipeline.store_events(repo, demo_events, create_services=True)
        tenant = repo.tenant.name
        scopes = [Scope(kind="service", name=s.name) for s in repo.services()]
        scopes += [Scope(kind="team", name=t.name) for t in repo.teams()]
    scopes.append(Scope(kind="tenant", name=tenant))
    for label in ("2026-W06", "2026-Q1"):
        window = parse_window(label, DEMO_NOW)
        for scope in scopes:
            bounded, full = both(sqlite_db.engine, tenant, scope, window, 12)
            assert bounded == full, (label, scope)


EDGE_EVENTS = [
    {
        "type": "commit",
        "service": "checkout",
        "sha": "a" * 40,
        "committed_at": "1970-01-02T00:00:00Z",
    },
    {
        "type": "deployment",
        "service": "checkout",
        "id": "d1",
        "sha": "a" * 40,
        "finished_at": "1970-01-03T00:00:00Z",
        "commits": ["a" * 40],
    },
    {
        "type": "deployment",
        "service": "checkout",
        "id": "d2",
        "sha": "b" * 40,
        "finished_at": "2099-01-03T00:00:00Z",
        "commits": [],
    },
]


@pytest.mark.parametrize(
    "label", ["1970-W01", "1970", "1970-Q1", "1970-01-01..2099-12-31", "2099-W50"]
)
def test_windows_at_the_ends_of_the_time_range_are_exact(sqlite_db, label):
    """Baselines reaching centuries before 1970, and a range over the whole accepted span."""
    tenant = store(sqlite_db.engine, EDGE_EVENTS)
    window = parse_window(label, now())
    bounded, full = both(sqlite_db.engine, tenant, Scope(kind="tenant", name=tenant), window, 12)
    assert bounded == full


def _reason(engine, tenant: str) -> str | None:
    window = parse_window("1970-W02", now())
    span = pipeline.read_span(window, 1)
    with unit_of_work(engine) as session:
        repo = TenantRepository.open(session, tenant)
        return window_read.window_frames(repo, list(SERVICES), span.start, span.end).reason


def test_the_commit_graph_reads_the_whole_history_and_reverts_do_not(sqlite_db):
    assert _reason(sqlite_db.engine, store(sqlite_db.engine, EDGE_EVENTS)) is None
    revert = {
        "type": "commit",
        "service": "checkout",
        "sha": "c" * 40,
        "committed_at": "1970-01-04T00:00:00Z",
        "message": f"Revert\n\nThis reverts commit {'a' * 40}.",
    }
    tenant = store(sqlite_db.engine, [*EDGE_EVENTS, revert])
    assert _reason(sqlite_db.engine, tenant) is None  # reverts are read bounded too
    unlisted = {k: v for k, v in EDGE_EVENTS[2].items() if k != "commits"}
    tenant = store(sqlite_db.engine, [*EDGE_EVENTS[:2], unlisted])
    assert _reason(sqlite_db.engine, tenant) == "shipped commits come from the commit graph"
    # the first deployment of an environment may lack its commits: it ships none anyway
    tenant = store(sqlite_db.engine, [EDGE_EVENTS[0], unlisted])
    assert _reason(sqlite_db.engine, tenant) is None
