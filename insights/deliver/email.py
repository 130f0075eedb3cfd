"""Email delivery (optional) of the weekly report with the standard library's smtplib.

Configured from the environment only (nothing in insights.toml):
`INSIGHTS_SMTP_HOST` (unset: email is off), `INSIGHTS_SMTP_PORT` (25), `INSIGHTS_SMTP_FROM`,
`INSIGHTS_SMTP_TO` (comma-separated list), `INSIGHTS_SMTP_USERNAME` and
`INSIGHTS_SMTP_PASSWORD` (login only when both are set; the password is never logged),
`INSIGHTS_SMTP_SECURITY` = `none` | `starttls` | `ssl`, `INSIGHTS_SMTP_TIMEOUT` (seconds).
A failed send is returned as a result, never raised: the report file stays where it was.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from insights.deliver.slack import DeliveryResult
from insights.errors import UserError


class EmailSettings(BaseSettings):
    """SMTP settings from `INSIGHTS_SMTP_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="INSIGHTS_SMTP_", extra="ignore")

    host: str | None = None
    port: int = Field(25, ge=1, le=65535)
    sender: str = Field("insights@localhost", alias="INSIGHTS_SMTP_FROM")
    to: str = ""
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["none", "starttls", "ssl"] = "none"
    timeout: float = 30.0

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: str) -> str:
        for address in _split(value):
            if "@" not in parseaddr(address)[1]:
                raise ValueError(f"not an email address: {address!r}")
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.host and self.recipients)

    @property
    def recipients(self) -> list[str]:
        return _split(self.to)


def _split(value: str) -> list[str]:
    return [a.strip() for a in value.split(",") if a.strip()]


def email_settings() -> EmailSettings:
    """Read the settings; a bad value is a one-line UserError naming the variable."""
    try:
        return EmailSettings()
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        name = str(err["loc"][0]).upper()
        if not name.startswith("INSIGHTS_SMTP_"):
            name = f"INSIGHTS_SMTP_{name}"
        raise UserError(f"{name}: {err['msg']}") from None


def report_message(
    cfg: EmailSettings, subject: str, text: str, report: Path | None
) -> EmailMessage:
    """A plain-text message with the self-contained HTML report attached (if there is one)."""
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = cfg.sender
    msg["To"] = ", ".join(cfg.recipients)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=cfg.sender.rpartition("@")[2] or "localhost")
    msg.set_content(text)
    if report is not None:
        msg.add_attachment(
            report.read_bytes(), maintype="text", subtype="html", filename=report.name
        )
    return msg


def send_report_email(
    cfg: EmailSettings, subject: str, text: str, report: Path | None = None
) -> DeliveryResult:
    """Send the weekly report to `INSIGHTS_SMTP_TO`; failures come back as a result."""
    if not cfg.enabled:
        return DeliveryResult(False, None, "email not configured (INSIGHTS_SMTP_HOST/_TO)")
    msg = report_message(cfg, subject, text, report)
    try:
        if cfg.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                cfg.host or "", cfg.port, timeout=cfg.timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(cfg.host or "", cfg.port, timeout=cfg.timeout)
        with smtp:
            if cfg.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if cfg.username and cfg.password:
                smtp.login(cfg.username, cfg.password.get_secret_value())
            refused = smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        message = str(exc)
        if cfg.password:
            message = message.replace(cfg.password.get_secret_value(), "***")
        return DeliveryResult(False, None, f"{type(exc).__name__}: {message}"[:300])
    if refused:
        return DeliveryResult(False, 250, f"refused recipients: {', '.join(sorted(refused))}")
    return DeliveryResult(True, 250)
