"""Slack digest: payload shape and limits, and delivery against a local webhook server."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

import pytest
from report_support import verdicts_of
from werkzeug import Request, Response

from insights.config import TeamConfig, TenantConfig
from insights.deliver.slack import (
    MAX_BLOCKS,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    build_digest,
    fit_blocks,
    fmt_delta,
    fmt_value,
    moved_most,
    send_digest,
    webhook_url,
)
from insights.errors import UserError
from insights.metrics.result import (
    LeadTimeHours,
    MetricReport,
    RecoveryTimeHours,
    Scope,
    Tiers,
    Window,
    WindowMetrics,
)
from insights.narrate.schema import Narrative, Recommendation

WEEK = Window(
    start=datetime(2026, 1, 26, tzinfo=UTC), end=datetime(2026, 2, 2, tzinfo=UTC), label="2026-W05"
)
PREV = Window(
    start=datetime(2026, 1, 19, tzinfo=UTC), end=datetime(2026, 1, 26, tzinfo=UTC), label="2026-W04"
)
SECRET_PATH = "/services/T000/B000/s3cr3tXYZ"


def report(**overrides) -> MetricReport:
    previous = WindowMetrics(
        window=PREV,
        deployment_count=4,
        deployments_per_week=4.0,
        lead_time_hours=LeadTimeHours(median=40.0, p75=50.0, p90=70.0, samples=9),
        change_failure_rate=0.25,
        failed_deployments=1,
        recovery_time_hours=RecoveryTimeHours(median=3.0, p90=3.0, samples=1),
        rework_rate=0.25,
    )
    fields = dict(
        window=WEEK,
        tenant="acme",
        scope=Scope(kind="team", name="payments"),
        deployment_count=6,
        deployments_per_week=6.0,
        lead_time_hours=LeadTimeHours(median=26.0, p75=30.0, p90=55.5, samples=14),
        change_failure_rate=1 / 6,
        failed_deployments=1,
        recovery_time_hours=RecoveryTimeHours(median=1.5, p90=1.5, samples=1),
        rework_rate=0.0,
        tier=Tiers(
            deployment_frequency="high",
            lead_time="high",
            change_failure_rate="medium",
            recovery_time="elite",
            overall="high",
        ),
        previous=previous,
    )
    fields.update(overrides)
    return MetricReport(**fields)


NARRATIVE = Narrative(
    summary="Payments shipped 6 deployments; lead time fell to 26 hours.",
    highlights=["Lead time median 26 hours"],
    recommendations=[
        Recommendation(
            title="Review pull requests within a day",
            why="Pickup is the slowest stage; <!channel> reviewers & owners should rotate.",
            metric="lead_time",
            capability="streamlining change approval",
            evidence=["lead time median 26 hours"],
        )
    ],
)


def texts(payload: dict) -> list[str]:
    out = []
    for block in payload["blocks"]:
        if "text" in block:
            out.append(block["text"]["text"])
        out += [f["text"] for f in block.get("fields", [])]
        out += [e.get("text", "") for e in block.get("elements", []) if isinstance(e, dict)]
    return [t if isinstance(t, str) else t["text"] for t in out]


BACKED = verdicts_of(
    deployment_frequency="improved",
    lead_time="improved",
    change_failure_rate="improved",
    rework_rate="improved",
)


def test_digest_has_header_numbers_with_tiers_and_deltas_movement_advice_and_link():
    payload = build_digest(
        report(verdicts=BACKED), NARRATIVE, "https://insights.example/acme/r.html"
    )
    kinds = [b["type"] for b in payload["blocks"]]
    assert kinds[0] == "header"
    assert payload["blocks"][0]["text"]["text"] == "DORA digest · Team payments · 2026-W05"
    fields = next(b["fields"] for b in payload["blocks"] if "fields" in b)
    assert [f["text"].split("\n")[0] for f in fields] == [
        "*Deployments / week*",
        "*Lead time (median)*",
        "*Change failure rate*",
        "*Recovery time (median)*",
        "*Rework rate*",
    ]
    assert fields[0]["text"] == (
        "*Deployments / week*\n6 · high\n+2 vs previous :white_check_mark:"
    )
    assert (
        fields[1]["text"]
        == "*Lead time (median)*\n26 h · high\n−14 h vs previous :white_check_mark:"
    )
    assert (
        fields[2]["text"]
        == "*Change failure rate*\n16.7% · medium\n−8.3 pp vs previous :white_check_mark:"
    )
    # Rework went 25% → 0%: the largest relative move.
    assert "*Rework rate* improved 100% (25% → 0%)" in " ".join(texts(payload))
    button = payload["blocks"][-1]["elements"][0]
    assert button["url"] == "https://insights.example/acme/r.html"
    assert "overall tier high" in payload["text"]


def test_digest_calls_noise_noise_and_says_when_samples_are_too_few():
    verdicts = verdicts_of(recovery_time="too little data")
    payload = build_digest(report(verdicts=verdicts), NARRATIVE, None)
    fields = next(b["fields"] for b in payload["blocks"] if "fields" in b)
    assert fields[0]["text"].endswith("+2 vs previous · within normal variation")
    assert fields[3]["text"].endswith("−1.5 h vs previous · too few recoveries to judge (10)")
    moved = " ".join(texts(payload))
    assert "*Rework rate* changed 100% (25% → 0%), within normal variation" in moved
    assert "improved" not in moved and ":white_check_mark:" not in moved


def test_a_move_the_verdict_backs_is_named_before_a_larger_one_that_is_noise():
    text = moved_most(report(verdicts=verdicts_of(lead_time="improved")))
    assert text == "*Lead time (median)* improved 35% (40 h → 26 h)"


def test_collected_text_cannot_ping_or_link_in_slack():
    payload = build_digest(report(), NARRATIVE, None)
    advice = next(t for t in texts(payload) if t.startswith(":bulb:"))
    assert "<!channel>" not in advice
    assert "&lt;!channel&gt; reviewers &amp; owners" in advice


def test_a_digest_without_report_url_has_no_link_and_no_setup_hint():
    payload = build_digest(report(), NARRATIVE, None)
    assert "INSIGHTS_REPORT_BASE_URL" not in json.dumps(payload)
    assert all(b["type"] != "actions" for b in payload["blocks"])


def _moved_line(payload) -> str:
    return next(t for t in texts(payload) if "improved" in t or "worsened" in t or "changed" in t)


def test_the_emoji_follows_whether_the_move_is_good_or_bad():
    # lead time falling 40 h -> 20 h is good news; rising 40 h -> 80 h is bad news
    quiet = dict(change_failure_rate=0.25, rework_rate=0.25, deployments_per_week=4.0)
    better = report(
        lead_time_hours=LeadTimeHours(median=20.0, samples=3),
        verdicts=verdicts_of(lead_time="improved"),
        **quiet,
    )
    worse = report(
        lead_time_hours=LeadTimeHours(median=80.0, samples=3),
        verdicts=verdicts_of(lead_time="worsened"),
        **quiet,
    )
    noise = report(lead_time_hours=LeadTimeHours(median=80.0, samples=3), **quiet)
    good = _moved_line(build_digest(better, None, None))
    bad = _moved_line(build_digest(worse, None, None))
    unclear = _moved_line(build_digest(noise, None, None))
    assert good.startswith(":white_check_mark: *Lead time (median)* improved"), good
    assert bad.startswith(":warning: *Lead time (median)* worsened"), bad
    assert unclear.startswith(":information_source: "), unclear
    assert ":chart_with_upwards_trend:" not in good + bad + unclear


def test_one_deployment_is_singular():
    payload = build_digest(report(deployment_count=1, deployments_per_week=1.0), None, None)
    context = payload["blocks"][1]["elements"][0]["text"]
    assert " · 1 deployment · " in context
    assert payload["text"].endswith(": 1 deployment, overall tier high")


def test_the_recommendation_names_its_dora_capability():
    payload = build_digest(report(), NARRATIVE, None)
    advice = next(t for t in texts(payload) if t.startswith(":bulb:"))
    assert advice.startswith(
        ":bulb: *Review pull requests within a day* _(DORA capability: streamlining change "
        "approval)_\n"
    )


def test_no_previous_window_and_no_deployments_read_as_no_data_not_zero():
    empty = report(
        deployment_count=0,
        deployments_per_week=0.0,
        lead_time_hours=LeadTimeHours(),
        change_failure_rate=None,
        failed_deployments=0,
        recovery_time_hours=RecoveryTimeHours(),
        rework_rate=None,
        tier=Tiers(),
        previous=None,
    )
    payload = build_digest(empty, None, None)
    fields = next(b["fields"] for b in payload["blocks"] if "fields" in b)
    assert fields[1]["text"] == "*Lead time (median)*\nno data"
    assert fields[2]["text"] == "*Change failure rate*\nno data"
    assert moved_most(empty) == "No previous window to compare with yet."
    assert "overall tier not enough data" in payload["text"]


def test_huge_texts_and_block_counts_are_cut_to_slack_limits():
    long = Narrative(
        summary="x" * 2500,
        recommendations=[
            Recommendation(title="t" * 160, why="w" * 1200, metric="lead_time", evidence=[])
        ],
    )
    payload = build_digest(report(scope=Scope(kind="team", name="p" * 200)), long, None)
    header = payload["blocks"][0]["text"]["text"]
    assert len(header) == MAX_HEADER_TEXT and header.endswith("…")
    blocks = fit_blocks([{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 5000}}] * 80)
    assert len(blocks) == MAX_BLOCKS
    assert all(len(b["text"]["text"]) == MAX_SECTION_TEXT for b in blocks)
    assert len(json.dumps(payload)) < 40_000


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (None, "hours", "no data"),
        (26.04, "hours", "26 h"),
        (50.0, "hours", "50 h"),
        (84.0, "hours", "3.5 d"),
        (4127.9, "hours", "24.6 wk"),
        (0.083, "rate", "8.3%"),
        (3.0, "count", "3"),
        (2.5, "count", "2.5"),
    ],
)
def test_values_are_formatted_for_people(value, unit, text):
    assert fmt_value(value, unit) == text


def test_deltas_are_signed_and_unchanged_reads_plus_minus_zero():
    assert fmt_delta(0.1, 0.25, "rate") == "−15 pp"
    assert fmt_delta(0.056, 0.067, "rate") == "−1.1 pp"
    assert fmt_delta(3.0, 3.0, "count") == "±0"
    assert fmt_delta(None, 3.0, "count") is None


def test_a_change_that_rounds_to_nothing_is_plus_minus_zero_not_minus_zero():
    assert fmt_delta(26.01, 26.04, "hours") == "±0"
    assert fmt_delta(0.1, 0.10001, "rate") == "±0"
    assert fmt_delta(2.01, 2.04, "count") == "±0"


# --- delivery against a local webhook ------------------------------------------------------


def test_rate_limited_send_waits_retry_after_then_succeeds(httpserver, caplog):
    httpserver.expect_ordered_request(SECRET_PATH, method="POST").respond_with_response(
        Response("rate_limited", status=429, headers={"Retry-After": "1"})
    )
    httpserver.expect_ordered_request(SECRET_PATH, method="POST").respond_with_data("ok")
    payload = build_digest(report(), NARRATIVE, "https://insights.example/r.html")
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    result = send_digest(httpserver.url_for(SECRET_PATH), payload)
    waited = time.monotonic() - started
    assert result.ok and result.status == 200
    assert waited >= 1.0
    assert len(httpserver.log) == 2
    request: Request = httpserver.log[1][0]
    assert request.headers["Content-Type"].startswith("application/json")
    assert json.loads(request.get_data()) == payload
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug")]
    assert all("s3cr3tXYZ" not in m for m in ours)


def test_server_error_is_reported_without_the_webhook_url(httpserver):
    httpserver.expect_request(SECRET_PATH, method="POST").respond_with_data(
        "internal_error", status=500
    )
    result = send_digest(httpserver.url_for(SECRET_PATH), build_digest(report(), None, None))
    assert not result.ok
    assert result.status == 500
    assert result.error == "HTTP 500: internal_error"
    assert len(httpserver.log) == 1  # a 500 is not retried blindly


def test_unreachable_webhook_is_a_result_not_a_crash():
    result = send_digest("http://127.0.0.1:9/services/s3cr3tXYZ", {"text": "x"}, timeout=2)
    assert not result.ok and result.status is None
    assert "s3cr3tXYZ" not in (result.error or "")
    assert result.error == "cannot reach the Slack webhook (Connection refused)"


def test_a_value_that_is_not_a_url_is_refused_without_echoing_it(monkeypatch):
    result = send_digest("xoxb-s3cr3tXYZ", {"text": "x"})
    assert not result.ok
    assert result.error == "Slack webhook: not an http(s) URL (expected https://hooks.slack.com/…)"
    tenant = TenantConfig(name="acme", teams=[TeamConfig(name="web", slack_webhook_env="HOOK")])
    monkeypatch.setenv("HOOK", "xoxb-s3cr3tXYZ")
    with pytest.raises(UserError) as caught:
        webhook_url(tenant, "web")
    assert str(caught.value) == (
        "team web: Slack webhook in HOOK: not an http(s) URL (expected https://hooks.slack.com/…)"
    )


def test_webhook_url_comes_from_the_team_env_then_the_tenant_env(monkeypatch):
    tenant = TenantConfig(
        name="acme",
        teams=[TeamConfig(name="payments", slack_webhook_env="PAY_HOOK"), TeamConfig(name="web")],
        slack={"webhook_url_env": "ACME_HOOK"},
    )
    monkeypatch.setenv("PAY_HOOK", "https://hooks.example/pay")
    monkeypatch.setenv("ACME_HOOK", "https://hooks.example/acme")
    assert webhook_url(tenant, "payments") == "https://hooks.example/pay"
    assert webhook_url(tenant, "web") == "https://hooks.example/acme"
    monkeypatch.delenv("PAY_HOOK")
    with pytest.raises(
        UserError, match="team payments: Slack webhook: environment variable PAY_HOOK is not set"
    ):
        webhook_url(tenant, "payments")
    with pytest.raises(UserError, match="team web: no Slack webhook configured"):
        webhook_url(TenantConfig(name="solo", teams=[TeamConfig(name="web")]), "web")
