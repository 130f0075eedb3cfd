"""Slack digest: one Block Kit message per team, sent through an incoming webhook.

The digest holds the headline numbers with their DORA tiers and the change against the
previous window, the metric that moved most, one recommendation, and a link to the HTML report.
Rules:
- A change is called improved or worsened (✅/⚠️) only when its verdict against the previous
  window says so (`metrics/verdicts.py`); otherwise it reads "within normal variation", or "too
  few recoveries to judge (2)" with the sample size when there were too few samples.
- Slack limits are enforced here, whatever the data: at most 50 blocks, section text 3,000
  characters, header 150 characters of plain text, 10 fields of 2,000 characters.
- Text that came from outside (narrative, titles) is escaped for mrkdwn (`&`, `<`, `>`), so it
  cannot ping `@channel` or hide a link.
- The webhook URL is a secret read from the environment variable the config names; it is never
  logged (slack_sdk logs URLs on retry, so its logger is kept quiet) nor put in an error.
- 429 responses are retried honouring Retry-After (slack_sdk's RateLimitErrorRetryHandler);
  any other failure is returned as a `DeliveryResult`, not raised: the report already written
  stays, and the caller records the failure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from insights import humanize
from insights.config import TenantConfig, secret
from insights.deliver.html import window_span
from insights.errors import UserError
from insights.metrics.result import MetricReport, WindowMetrics
from insights.narrate.schema import Narrative

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_BUTTON_URL = 3000

# slack_sdk logs the full webhook URL at DEBUG and on every retry at INFO: keep it quiet.
_client_log = logging.getLogger("insights.deliver.slack.client")
_client_log.setLevel(logging.WARNING)
_client_log.propagate = False
_client_log.addHandler(logging.NullHandler())

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class Headline:
    """One headline metric: how to read it from a window and which direction is better."""

    key: str
    label: str
    better: Better
    unit: Literal["count", "hours", "rate"]
    tier: str | None

    @property
    def metric(self) -> str:
        """The metric's name in the verdicts (and the facts document)."""
        return "deployment_frequency" if self.key == "deployments_per_week" else self.key

    def value(self, m: WindowMetrics) -> float | None:
        match self.key:
            case "deployments_per_week":
                return m.deployments_per_week if m.deployment_count else 0.0
            case "lead_time":
                return m.lead_time_hours.median
            case "change_failure_rate":
                return m.change_failure_rate
            case "recovery_time":
                return m.recovery_time_hours.median
            case "rework_rate":
                return m.rework_rate
        raise KeyError(self.key)


HEADLINES = (
    Headline(
        "deployments_per_week", "Deployments / week", "higher", "count", "deployment_frequency"
    ),
    Headline("lead_time", "Lead time (median)", "lower", "hours", "lead_time"),
    Headline("change_failure_rate", "Change failure rate", "lower", "rate", "change_failure_rate"),
    Headline("recovery_time", "Recovery time (median)", "lower", "hours", "recovery_time"),
    Headline("rework_rate", "Rework rate", "lower", "rate", None),
)


def escape(text: str) -> str:
    """Escape mrkdwn control characters (Slack's rule: only `&`, `<` and `>`)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def fmt_value(value: float | None, unit: str) -> str:
    """`12`, `3.5`, `26.5 h`, `3.5 d` (from 72 h), `24.6 wk` (from 14 days), `5.6%`, `0%`;
    None is `no data`. Durations follow `insights.humanize`, like the report and narrative."""
    if value is None:
        return "no data"
    if unit == "rate":
        return f"{value * 100:.1f}".removesuffix(".0") + "%"
    if unit == "hours":
        return humanize.duration(value, short=True)
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def fmt_delta(current: float | None, previous: float | None, unit: str) -> str | None:
    """The change against the previous window: `+2`, `−3.5 h`, `+4.2 pp`; None without data."""
    if current is None or previous is None:
        return None
    diff = current - previous
    if unit == "rate":
        text = f"{abs(diff) * 100:.1f}".removesuffix(".0") + " pp"
    elif unit == "hours":
        text = humanize.duration(abs(diff), short=True)
    else:
        text = f"{abs(diff):.1f}".removesuffix(".0")
    if float(text.split()[0]) == 0:  # rounds to nothing: no "−0.0 h"
        return "±0"
    return ("+" if diff > 0 else "−") + text


# What each verdict counts, for "too few … to judge".
SAMPLE_NOUNS = {
    "deployment_frequency": "deployments",
    "lead_time": "deployments",
    "change_failure_rate": "deployments",
    "recovery_time": "recoveries",
    "rework_rate": "deployments",
}


def _verdict(report: MetricReport, h: Headline) -> tuple[str, int | None]:
    """The verdict against the previous window and the current window's sample size."""
    found = getattr(report.verdicts, h.metric).previous if report.verdicts else None
    if found is None:
        return "too little data", None
    return found.verdict, found.current_samples


def _unclear(report: MetricReport, h: Headline) -> str:
    verdict, samples = _verdict(report, h)
    if verdict == "no clear change":
        return "within normal variation"
    few = f"too few {SAMPLE_NOUNS[h.metric]} to judge"
    return few if samples is None else f"{few} ({samples})"


def _arrow(report: MetricReport, h: Headline, current: float | None, previous: float | None) -> str:
    if current is None or previous is None or current == previous:
        return ""
    improved = (current > previous) == (h.better == "higher")
    if _verdict(report, h)[0] != ("improved" if improved else "worsened"):
        return f" · {_unclear(report, h)}"
    return " :white_check_mark:" if improved else " :warning:"


def plural(count: int, noun: str) -> str:
    """`1 deployment`, `2 deployments`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def moved_most(report: MetricReport) -> str:
    """The sentence of `movement()`."""
    return movement(report)[0]


def movement(report: MetricReport) -> tuple[str, bool | None]:
    """The headline metric with the largest relative change against the previous window.

    Example: lead time median 40 h → 26 h reads "Lead time (median) improved 35% (40.0 h →
    26.0 h)" when its verdict says improved, "Lead time (median) changed 35% (40.0 h → 26.0 h),
    within normal variation" when not; moves the verdict backs come first. Metrics without a
    value in either window, or with 0 before, are not compared. Returns the sentence and
    whether the move is good news (None: nothing compared, or not backed by its verdict).
    """
    if report.previous is None:
        return "No previous window to compare with yet.", None
    best: tuple[tuple[bool, float], Headline, float, float, str] | None = None
    for h in HEADLINES:
        cur, prev = h.value(report), h.value(report.previous)
        if cur is None or prev is None or prev == 0 or cur == prev:
            continue
        change = (cur - prev) / abs(prev)
        verb = "improved" if (cur > prev) == (h.better == "higher") else "worsened"
        rank = (_verdict(report, h)[0] == verb, abs(change))
        if best is None or rank > best[0]:
            best = (rank, h, cur, prev, verb)
    if best is None:
        return "Nothing moved against the previous window.", None
    (backed, change), h, cur, prev, verb = best
    values = f"({fmt_value(prev, h.unit)} → {fmt_value(cur, h.unit)})"
    if backed:
        return f"*{h.label}* {verb} {change * 100:.0f}% {values}", verb == "improved"
    return f"*{h.label}* changed {change * 100:.0f}% {values}, {_unclear(report, h)}", None


# The emoji says whether the move is good news, not which way the number went: a lead time
# that falls is an improvement; a move within normal variation is neither.
_MOVE_EMOJI = {True: ":white_check_mark:", False: ":warning:", None: ":information_source:"}


def _scope_title(report: MetricReport) -> str:
    kinds = {"team": "Team", "service": "Service", "tenant": "Organisation"}
    return f"{kinds[report.scope.kind]} {report.scope.name}"


def build_digest(
    report: MetricReport, narrative: Narrative | None, report_url: str | None
) -> dict[str, Any]:
    """The webhook payload (`text` fallback + `blocks`) for one team's weekly digest."""
    title = f"DORA digest · {_scope_title(report)} · {report.window.label}"
    fields = []
    for h in HEADLINES:
        cur = h.value(report)
        prev = h.value(report.previous) if report.previous else None
        tier = getattr(report.tier, h.tier) if h.tier else None
        line = f"*{h.label}*\n{fmt_value(cur, h.unit)}"
        if tier:
            line += f" · {tier}"
        delta = fmt_delta(cur, prev, h.unit)
        if delta:
            line += f"\n{delta} vs previous{_arrow(report, h, cur, prev)}"
        fields.append({"type": "mrkdwn", "text": clip(line, MAX_FIELD_TEXT)})
    overall = report.tier.overall or "not enough data"
    moved = movement(report)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": escape(
                        f"{window_span(report.window.start, report.window.end)}"
                        f" · {plural(report.deployment_count, 'deployment')}"
                        f" · overall tier: {overall}"
                    ),
                }
            ],
        },
        {"type": "section", "fields": fields[:MAX_FIELDS]},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{_MOVE_EMOJI[moved[1]]} {moved[0]}"},
        },
    ]
    if narrative is not None:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": escape(narrative.summary)}}
        )
        rec = narrative.recommendations[0]
        capability = f" _(DORA capability: {escape(rec.capability)})_" if rec.capability else ""
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f":bulb: *{escape(rec.title)}*{capability}\n{escape(rec.why)}",
                },
            }
        )
    if report_url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open the full report"},
                        "url": report_url[:MAX_BUTTON_URL],
                    }
                ],
            }
        )
    # Without a report URL the digest has no link: the team channel is no place for setup hints.
    text = f"{title}: {plural(report.deployment_count, 'deployment')}, overall tier {overall}"
    return {"text": clip(text, MAX_SECTION_TEXT), "blocks": fit_blocks(blocks)}


def fit_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Enforce Slack's limits on any block list: count, header and section text lengths."""
    fitted = []
    for block in blocks[:MAX_BLOCKS]:
        block = dict(block)
        if block["type"] == "header":
            block["text"] = {**block["text"], "text": clip(block["text"]["text"], MAX_HEADER_TEXT)}
        elif block["type"] == "section":
            if "text" in block:
                block["text"] = {
                    **block["text"],
                    "text": clip(block["text"]["text"], MAX_SECTION_TEXT),
                }
            if "fields" in block:
                block["fields"] = [
                    {**f, "text": clip(f["text"], MAX_FIELD_TEXT)}
                    for f in block["fields"][:MAX_FIELDS]
                ]
        fitted.append(block)
    return fitted


def webhook_url(tenant: TenantConfig, team: str) -> str:
    """The team's webhook URL: its `slack_webhook_env`, else the tenant's `webhook_url_env`."""
    team_config = next((t for t in tenant.teams if t.name == team), None)
    env_name = (team_config.slack_webhook_env if team_config else None) or (
        tenant.slack.webhook_url_env
    )
    if not env_name:
        raise UserError(
            f"team {team}: no Slack webhook configured (set slack_webhook_env on the team or"
            f" [tenants.slack] webhook_url_env for tenant {tenant.name})"
        )
    url = secret(env_name, f"team {team}: Slack webhook")
    check_webhook_url(url, f"team {team}: Slack webhook in {env_name}")
    return url


def check_webhook_url(url: str, what: str) -> None:
    """Refuse a value that is not an http(s) URL (a token pasted into the variable, say),
    naming where it came from and never echoing it: it is a secret either way."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"{what}: not an http(s) URL (expected https://hooks.slack.com/…)")


@dataclass
class DeliveryResult:
    """How one send went; `error` never contains the webhook URL."""

    ok: bool
    status: int | None = None
    error: str | None = None


def send_digest(
    url: str, payload: dict[str, Any], max_retries: int = 3, timeout: int = 15
) -> DeliveryResult:
    """POST `payload` to the webhook; 429 is retried after Retry-After up to `max_retries`.

    Every failure is a one-line `error`: not a URL, unreachable, or the HTTP status and body.
    """
    try:
        check_webhook_url(url, "Slack webhook")
    except UserError as exc:
        return DeliveryResult(False, None, str(exc))
    client = WebhookClient(
        url,
        timeout=timeout,
        logger=_client_log,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=1),
            RateLimitErrorRetryHandler(max_retry_count=max_retries),
        ],
    )
    try:
        response = client.send_dict(payload)
    except Exception as exc:  # connection refused, TLS, timeout…
        reason = getattr(exc, "reason", None) or exc  # URLError wraps the socket error
        message = (getattr(reason, "strerror", None) or str(reason)).replace(url, "<webhook>")
        return DeliveryResult(False, None, f"cannot reach the Slack webhook ({message})"[:300])
    if response.status_code == 200:
        return DeliveryResult(True, 200)
    body = (response.body or "").replace(url, "<webhook>").strip()
    return DeliveryResult(False, response.status_code, f"HTTP {response.status_code}: {body}"[:300])
