"""Email delivery of the weekly report against a tiny local SMTP server."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default

import pytest
from smtp_support import start_smtp

from insights.deliver.email import EmailSettings, email_settings, send_report_email
from insights.errors import UserError


@pytest.fixture
def smtp():
    state, server = start_smtp()
    yield state
    server.shutdown()
    server.server_close()


def settings(smtp, **extra) -> EmailSettings:
    return EmailSettings(
        host=smtp.host,
        port=smtp.port,
        INSIGHTS_SMTP_FROM="insights@acme.example",
        to="em@acme.example, lead@acme.example",
        **extra,
    )


def test_report_is_mailed_to_every_recipient_with_the_html_attached(smtp, tmp_path):
    report = tmp_path / "team_payments.html"
    report.write_text("<html><body><h1>payments 2026-W05</h1></body></html>")
    result = send_report_email(settings(smtp), "DORA report 2026-W05", "Summary here.", report)
    assert result.ok
    [got] = smtp.messages
    assert got.sender == "insights@acme.example"
    assert got.recipients == ["em@acme.example", "lead@acme.example"]
    msg: EmailMessage = email.message_from_bytes(got.data, policy=default)
    assert msg["Subject"] == "DORA report 2026-W05"
    assert msg.get_body(("plain",)).get_content().strip() == "Summary here."
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "team_payments.html"
    assert "<h1>payments 2026-W05</h1>" in attachment.get_content()


def test_login_is_used_when_configured_and_the_password_never_leaks(smtp, tmp_path):
    cfg = settings(smtp, username="bot", password="hunter2-secret")
    assert "hunter2-secret" not in repr(cfg)
    assert send_report_email(cfg, "s", "t").ok
    assert smtp.messages[0].auth == "\0bot\0hunter2-secret"


def test_refused_recipient_and_dead_server_are_reported_not_raised(smtp, tmp_path):
    smtp.reject.add("lead@acme.example")
    refused = send_report_email(settings(smtp), "s", "t")
    assert not refused.ok
    assert refused.error == "refused recipients: lead@acme.example"
    dead = EmailSettings(host="127.0.0.1", port=9, to="a@b.example", timeout=2)
    result = send_report_email(dead, "s", "t")
    assert not result.ok and "ConnectionRefusedError" in (result.error or "")


def test_unconfigured_email_is_off():
    result = send_report_email(EmailSettings(host=None, to=""), "s", "t")
    assert not result.ok and "not configured" in (result.error or "")


def test_bad_recipient_list_names_the_variable(monkeypatch):
    monkeypatch.setenv("INSIGHTS_SMTP_TO", "em@acme.example, not-an-address")
    with pytest.raises(
        UserError, match=r"INSIGHTS_SMTP_TO: .*not an email address: 'not-an-address'"
    ):
        email_settings()
    monkeypatch.setenv("INSIGHTS_SMTP_TO", "em@acme.example")
    monkeypatch.setenv("INSIGHTS_SMTP_PORT", "seventy")
    with pytest.raises(UserError, match="INSIGHTS_SMTP_PORT"):
        email_settings()
