"""HTML reports: escaping, self-containment, what a report shows, the index, `insights report`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from report_support import make_report, week
from typer.testing import CliRunner

from insights import pipeline
from insights.cli import app
from insights.config import ServiceConfig, TeamConfig, TenantConfig
from insights.deliver.html import render_report, write_index, write_report, write_reports
from insights.metrics.result import LeadTimeBreakdownHours, LeadTimeHours, Scope, SlowChange
from insights.model import ChangeEvent, CommitEvent, DeploymentEvent, IncidentEvent
from insights.narrate.builtin import as_result as builtin_result
from insights.narrate.facts import build_facts
from insights.narrate.schema import Narrative, NarrativeResult, Recommendation
from insights.store.db import unit_of_work
from insights.store.models import Narrative as NarrativeRow
from insights.store.repository import TenantRepository

HOSTILE = "<script>alert(1)</script>"
NOW = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
_ATTR = re.compile(r"""(?:\b(?:src|href|xlink:href|action|poster|data)\s*=\s*)["']?([^"'\s>]+)""")


def _html(report=None, result=None) -> str:
    report = report or make_report()
    result = result or builtin_result(build_facts(report))
    return render_report(report, result, [], NOW)


def test_hostile_change_title_renders_as_text():
    report = make_report(
        slowest=[SlowChange(service="checkout", id="1", title=HOSTILE, lead_time_hours=9.0)]
    )
    html = _html(report)
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()


def test_narrative_from_a_model_is_escaped_too():
    report = make_report()
    narrative = Narrative(
        summary='Lead time was 20.5 hours <img src=x onerror="alert(1)">.',
        recommendations=[
            Recommendation(
                title="<b>Review</b> faster",
                why="Because <iframe>.",
                metric="lead_time",
                evidence=["20.5 hours"],
            )
        ],
    )
    result = NarrativeResult(
        narrative=narrative, provider="openai", model="m", prompt_version="p1", outcome="accepted"
    )
    html = _html(report, result)
    assert "<img" not in html and "<iframe" not in html and "<b>Review" not in html
    assert "&lt;img src=x" in html
    assert "Written by openai model m (prompt p1) · accepted on first answer" in html


def test_report_file_is_self_contained():
    html = _html()
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert "@import" not in html
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html)
    external = [u for u in _ATTR.findall(html) if re.match(r"(https?:)?//", u)]
    assert external == []
    # Charts are inline SVG, not images.
    assert html.count("<svg") == 7
    assert "<img" not in html


def test_report_shows_tiers_deltas_narrative_and_who_wrote_it():
    report = make_report()
    result = builtin_result(build_facts(report))
    html = _html(report, result)
    assert "Team payments — 2026-W06" in html
    assert '<span class="badge medium">medium</span>' in html  # change failure rate tier
    assert "▲ +2.4 pp vs 2026-W05" in html  # change failure rate delta
    assert "▼ −1.3 h vs 2026-W05" in html  # lead time improved
    assert "Written by the built-in narrator (builtin-2)" in html
    for rec in result.narrative.recommendations:
        assert rec.title in html
    assert "Trends over 12 weeks" in html
    assert "Refactor payment retries" in html  # slowest change title


def test_missing_values_show_as_dash_not_zero():
    report = make_report(
        lead_time_hours=LeadTimeHours(),
        lead_time_breakdown_hours=LeadTimeBreakdownHours(),
        change_failure_rate=None,
        rework_rate=None,
    )
    html = _html(report)
    card = re.search(r"Lead time for changes</div>\s*<div class=\"value\">(.*?) <", html)
    assert card and card.group(1) == "—"
    assert "no data" in html  # empty breakdown chart


def test_index_lists_every_report_newest_window_first(tmp_path: Path):
    items = []
    for offset in (1, 0):
        for scope in (
            Scope(kind="tenant", name="acme"),
            Scope(kind="team", name="payments"),
            Scope(kind="service", name="checkout"),
        ):
            report = make_report(scope=scope, window=week(offset))
            items.append((report, builtin_result(build_facts(report))))
    paths = write_reports(tmp_path, items, {}, NOW)
    index = paths[-1]
    assert index == tmp_path / "acme" / "index.html"
    html = index.read_text()
    links = re.findall(r'<a href="([^"]+)">', html)
    files = sorted(str(p.relative_to(index.parent)) for p in index.parent.rglob("*.html"))
    files.remove("index.html")
    assert sorted(links) == files
    assert len(files) == 6
    assert html.index("2026-W06") < html.index("2026-W05")
    assert "6 reports in 2 windows" in html


def test_index_lists_a_report_written_without_a_manifest(tmp_path: Path):
    stray = tmp_path / "acme" / "2026-W01" / "service-old.html"
    stray.parent.mkdir(parents=True)
    stray.write_text("<!doctype html><title>old</title>")
    html = write_index(tmp_path, "acme", NOW).read_text()
    assert '<a href="2026-W01/service-old.html">old</a>' in html


def test_scope_names_become_safe_file_names(tmp_path: Path):
    report = make_report(scope=Scope(kind="service", name="web/../../etc"))
    path = write_report(tmp_path, report, builtin_result(build_facts(report)), [], NOW)
    assert path.parent == tmp_path / "acme" / "2026-W06"
    assert path.name == "service-web_.._.._etc.html"


# -- through the database ------------------------------------------------------------------

T0 = datetime(2026, 1, 26, 9, 0, tzinfo=UTC)  # Monday of 2026-W05


def _events():
    """Two services of one team; checkout deploys twice in 2026-W05, one fails."""
    events = []
    for service, (sha1, sha2) in {
        "checkout": ("aa01", "aa02"),
        "billing": ("bb01", "bb02"),
    }.items():
        events += [
            CommitEvent(service=service, sha=sha1, committed_at=T0 - timedelta(hours=20)),
            CommitEvent(service=service, sha=sha2, committed_at=T0 + timedelta(hours=2)),
            ChangeEvent(
                service=service,
                id="7",
                title=HOSTILE,
                opened_at=T0 - timedelta(hours=10),
                first_commit_at=T0 - timedelta(hours=20),
                first_review_at=T0 - timedelta(hours=5),
                merged_at=T0 - timedelta(hours=1),
                merge_sha=sha1,
                commits=(sha1,),
            ),
            DeploymentEvent(
                service=service,
                id="d1",
                sha=sha1,
                finished_at=T0 + timedelta(hours=1),
                commits=(sha1,),
            ),
            DeploymentEvent(
                service=service,
                id="d2",
                sha=sha2,
                finished_at=T0 + timedelta(days=1),
                commits=(sha2,),
            ),
        ]
    events.append(
        IncidentEvent(
            service="checkout",
            id="INC-1",
            opened_at=T0 + timedelta(days=1, hours=1),
            resolved_at=T0 + timedelta(days=1, hours=4),
            deployment_id="d2",
        )
    )
    return events


CONFIG = TenantConfig(
    name="acme",
    teams=[TeamConfig(name="payments")],
    services=[
        ServiceConfig(name="checkout", team="payments"),
        ServiceConfig(name="billing", team="payments"),
    ],
)


def _load(engine) -> None:
    with unit_of_work(engine) as session:
        repo = pipeline.apply_org_config(session, CONFIG)
        pipeline.store_events(repo, _events(), create_services=True, tenant_config=CONFIG)


def test_build_reports_writes_every_scope_and_stores_narratives(db, tmp_path: Path):
    _load(db.engine)
    window = week(1)  # 2026-W05
    with unit_of_work(db.engine) as session:
        built = pipeline.build_reports(session, CONFIG, window, tmp_path, generated_at=NOW)
    names = sorted(p.name for p in built.paths)
    assert names == ["service-billing.html", "service-checkout.html", "team-payments.html",
                     "tenant.html"]  # fmt: skip
    assert built.outcomes == {"builtin:builtin": 4}
    checkout = (tmp_path / "acme" / "2026-W05" / "service-checkout.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in checkout
    assert "<script" not in checkout
    assert '<span class="badge' in checkout
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, "acme")
        rows = list(session.scalars(repo.scoped(NarrativeRow)))
    assert len(rows) == 4 and all(len(r.cache_key) == 64 for r in rows)
    # A second run reuses every stored narrative.
    with unit_of_work(db.engine) as session:
        again = pipeline.build_reports(session, CONFIG, window, tmp_path, generated_at=NOW)
    assert again.outcomes == {"builtin:cached": 4}


def test_report_command_writes_reports_and_prints_the_index(cli_env, tmp_path: Path):
    _load(cli_env.engine)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", "--tenant", "acme", "-w", "2026-W05", "-o", out])
    assert result.exit_code == 0, result.output
    index = out / "acme" / "index.html"
    assert result.output.strip().splitlines()[-1] == str(index.resolve())
    assert "4 reports for tenant acme, 2026-W05" in result.output
    assert len(list((out / "acme" / "2026-W05").glob("*.html"))) == 4


def test_report_command_names_an_unknown_tenant(cli_env, tmp_path: Path):
    result = CliRunner().invoke(app, ["report", "--tenant", "nobody", "-o", tmp_path])
    assert result.exit_code == 2
    assert result.output.startswith("error: tenant 'nobody': not found")


@pytest.fixture
def sqlite_cli(sqlite_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """CLI environment on SQLite only, for input errors found before any storage work."""
    monkeypatch.setenv("INSIGHTS_DATABASE_URL", sqlite_db.url)
    monkeypatch.delenv("INSIGHTS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return sqlite_db


def test_report_command_names_a_bad_window(sqlite_cli, tmp_path: Path):
    result = CliRunner().invoke(app, ["report", "--window", "last-week", "-o", tmp_path])
    assert result.exit_code == 2
    assert "error: window 'last-week'" in result.output


def test_report_command_names_an_output_path_that_is_a_file(sqlite_cli, tmp_path: Path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    result = CliRunner().invoke(app, ["report", "-o", target])
    assert result.exit_code == 2
    assert f"error: --out {target}: " in result.output
