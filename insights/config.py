"""Configuration: `INSIGHTS_*` environment variables plus the `insights.toml` organisation file.

Secrets never live here as values: the TOML names the environment variable that holds each
token or webhook URL (`token_env = "GITHUB_TOKEN"`), and `secret()` reads it at the edge.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from insights.errors import UserError

DEFAULT_PRODUCTION_PATTERN = r"^prod(uction)?$"
INCIDENT_KINDS = ("pagerduty", "jira")


def default_database_url() -> str:
    """`./insights.db` when the working directory already has one, else the user data dir."""
    local = Path("insights.db")
    if local.exists():
        return f"sqlite:///{local.resolve()}"
    base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "insights"
    return f"sqlite:///{base / 'insights.db'}"


class Settings(BaseSettings):
    """Process settings from the environment (`INSIGHTS_DATABASE_URL`, `INSIGHTS_CONFIG`, …)."""

    model_config = SettingsConfigDict(env_prefix="INSIGHTS_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url)
    config: Path | None = None
    reports_dir: Path = Path("reports")
    report_base_url: str = ""
    # HMAC key of signed report links (insights/deliver/links.py); env only, never shown
    report_link_secret: SecretStr | None = None
    report_link_ttl_days: int = Field(default=14, ge=1, le=366)
    debug: bool = False

    def organisation(self) -> OrgConfig:
        """The parsed `insights.toml` (INSIGHTS_CONFIG, else ./insights.toml, else empty)."""
        path = self.config
        if path is None and Path("insights.toml").exists():
            path = Path("insights.toml")
        return load_org_config(path) if path else OrgConfig()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_Strict):
    """Where a service's delivery data comes from.

    kind: `events` (pushed via import/record/API only), `localgit`, `github` or `gitlab`; the
    incident tools `pagerduty` and `jira` (usually listed under a service's `incidents`).
    """

    kind: Literal["events", "localgit", "github", "gitlab", "pagerduty", "jira"] = "events"
    # localgit: which tags are releases (see insights.collect.localgit.TagSelection)
    path: Path | None = None
    tag_include: list[str] = Field(default_factory=list)  # globs; empty: version-like tags
    tag_exclude: list[str] = Field(default_factory=list)  # globs
    tag_prereleases: bool = False  # also count -rc1, rc1, .dev1, a1, b1, -beta tags
    tag_pattern: str | None = None  # older single include glob, still honoured
    deploy_log: Path | None = None
    # github / gitlab
    repo: str | None = None
    base_url: str | None = None
    token_env: str | None = None
    environments: list[str] = Field(default_factory=list)
    workflow: str | None = None
    incident_label: str = "incident"
    # pagerduty: the PagerDuty service ids whose incidents are this service's incidents
    service_ids: list[str] = Field(default_factory=list)
    # pagerduty / jira: how far back the first sync reads, and how far back every sync
    # re-reads (a reopened or re-prioritised incident is seen again within this overlap)
    lookback_days: int = Field(default=90, ge=1, le=3650)
    overlap_days: int = Field(default=7, ge=0, le=365)
    # jira: the project whose issues are incidents (webhooks route by it), the JQL selecting
    # them (default: `project = <project> AND issuetype = Incident`), the env var holding the
    # Jira Cloud account e-mail (basic auth with an API token; unset: a Data Center personal
    # access token as Bearer), and a field naming the deployment (e.g. customfield_10050)
    project: str | None = None
    jql: str | None = None
    user_env: str | None = None
    issue_types: list[str] = Field(default_factory=lambda: ["Incident"])
    deployment_field: str | None = None
    # pagerduty / jira webhooks: the env var holding this source's signing secret
    webhook_secret_env: str | None = None
    # pagerduty / jira: a PEM file of CA certificates to trust instead of the system's (a
    # Data Center behind an internal CA, a TLS-inspecting proxy)
    ca_bundle: Path | None = None
    # rate limits: wait at most this long in one sync, then stop with the cursor saved
    max_rate_limit_wait_seconds: float = Field(default=300.0, ge=0)
    # first pause before retrying a 5xx or a dropped connection (doubles each attempt)
    retry_backoff_seconds: float = Field(default=1.0, ge=0)


class ServiceConfig(_Strict):
    name: str
    team: str | None = None
    production_pattern: str = DEFAULT_PRODUCTION_PATTERN
    source: SourceConfig = Field(default_factory=SourceConfig)
    # incident tools read besides `source` (`[[tenants.services.incidents]]`)
    incidents: list[SourceConfig] = Field(default_factory=list)

    @field_validator("incidents")
    @classmethod
    def _incident_tools(cls, value: list[SourceConfig]) -> list[SourceConfig]:
        for source in value:
            if source.kind not in INCIDENT_KINDS:
                raise ValueError(
                    f"kind {source.kind!r} is not an incident tool (use one of "
                    f"{', '.join(INCIDENT_KINDS)})"
                )
        return value

    def sources(self) -> list[ServiceConfig]:
        """This service once per source it reads: `source`, then each of `incidents` (as the
        service with that source), so every collector sees the one source it runs."""
        views = [self] if self.source.kind != "events" else []
        views += [self.model_copy(update={"source": s, "incidents": []}) for s in self.incidents]
        return views

    @field_validator("production_pattern")
    @classmethod
    def _valid_regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    def is_production(self, environment: str) -> bool:
        return re.search(self.production_pattern, environment) is not None


class TeamConfig(_Strict):
    name: str
    slack_webhook_env: str | None = None


class LlmConfig(_Strict):
    """Per-tenant model routing (DESIGN.md, Narration)."""

    provider: Literal["builtin", "bedrock", "openai"] = "builtin"
    model: str | None = None
    region: str | None = None
    inference_profile: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    max_tokens: int = 1500
    temperature: float = 0.2
    timeout_seconds: float = 60.0
    monthly_token_budget: int | None = None
    max_concurrency: int = 4
    # one run's scopes narrated at once (each call still waits for one of the endpoint's
    # max_concurrency slots); bounded by the database connection pool
    parallel_narrations: int = Field(4, ge=1, le=8)


class SlackConfig(_Strict):
    webhook_url_env: str | None = None


class ScheduleConfig(_Strict):
    sync_cron: str = "0 * * * *"
    report_cron: str = "0 8 * * mon"


class TenantConfig(_Strict):
    name: str
    timezone: str = "UTC"
    teams: list[TeamConfig] = Field(default_factory=list)
    services: list[ServiceConfig] = Field(default_factory=list)
    llm: LlmConfig = Field(default_factory=LlmConfig)
    slack: SlackConfig = Field(default_factory=SlackConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    webhook_secret_env: str | None = None

    def service(self, name: str) -> ServiceConfig | None:
        return next((s for s in self.services if s.name == name), None)


class OrgConfig(_Strict):
    """The whole `insights.toml`: a list of tenants."""

    tenants: list[TenantConfig] = Field(default_factory=list)

    @cached_property
    def by_name(self) -> dict[str, TenantConfig]:
        return {t.name: t for t in self.tenants}

    def tenant(self, name: str) -> TenantConfig:
        """The tenant's config; a tenant absent from the file gets defaults."""
        return self.by_name.get(name) or TenantConfig(name=name)


def load_org_config(path: Path) -> OrgConfig:
    """Read and validate `insights.toml`; any problem is a one-line UserError naming the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found (set INSIGHTS_CONFIG)") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    try:
        return OrgConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise UserError(f"{path}: {where}: {err['msg']}") from None


# A `*_env` field may instead reference a credential stored encrypted in the tenant registry:
# `stored:<tenant id>:<slot>` (insights/store/secrets.py installs the reader).
STORED_SECRET_PREFIX = "stored:"
_stored_secret_reader: Callable[[str], str | None] | None = None


def use_stored_secrets(reader: Callable[[str], str | None] | None) -> None:
    """Install how `stored:` references are read (the registry's engine); None removes it."""
    global _stored_secret_reader
    _stored_secret_reader = reader


def secret(env_name: str | None, what: str) -> str:
    """Read a secret from the environment variable the config names, or from the registry's
    encrypted store for a `stored:` reference; never log the value."""
    if not env_name:
        raise UserError(f"{what}: no environment variable configured for the secret")
    if env_name.startswith(STORED_SECRET_PREFIX):
        reader = _stored_secret_reader
        stored = reader(env_name) if reader is not None else None
        if not stored:
            raise UserError(f"{what}: the stored secret could not be read (INSIGHTS_SECRET_KEYS)")
        return stored
    value = os.environ.get(env_name)
    if not value:
        raise UserError(f"{what}: environment variable {env_name} is not set")
    return value
