"""`insights sync` with a GitHub and a GitLab service side by side in one tenant (CliRunner)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import Database
from hosts_support import FakeGitHub, FakeGitLab
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner

from insights.cli import app
from insights.store.db import unit_of_work
from insights.store.repository import TenantRepository

runner = CliRunner()


def write_config(path: Path, github: FakeGitHub, gitlab: FakeGitLab) -> Path:
    path.write_text(
        f"""
[[tenants]]
name = "acme"

[[tenants.services]]
name = "web"

[tenants.services.source]
kind = "github"
repo = "{github.repo}"
base_url = "{github.url}"
token_env = "CLI_GITHUB_TOKEN"
environments = ["production"]
max_rate_limit_wait_seconds = 0.5

[[tenants.services]]
name = "shop"

[tenants.services.source]
kind = "gitlab"
repo = "{gitlab.project}"
base_url = "{gitlab.server.url_for("/").rstrip("/")}"
token_env = "CLI_GITLAB_TOKEN"
environments = ["production"]
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def sqlite_cli_env(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Database:
    """Like `cli_env`, on SQLite only: for tests of messages rather than storage."""
    monkeypatch.setenv("INSIGHTS_DATABASE_URL", sqlite_db.url)
    monkeypatch.chdir(tmp_path)
    return sqlite_db


@pytest.fixture
def hosts(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[FakeGitHub, FakeGitLab]:
    github, gitlab = FakeGitHub(httpserver), FakeGitLab(httpserver)
    monkeypatch.setenv("CLI_GITHUB_TOKEN", github.token)
    monkeypatch.setenv("CLI_GITLAB_TOKEN", gitlab.token)
    config = write_config(tmp_path / "insights.toml", github, gitlab)
    monkeypatch.setenv("INSIGHTS_CONFIG", str(config))
    shas = github.add_commits(3)
    github.add_deployment(shas[0], minutes=0)
    github.add_deployment(shas[2], minutes=10)
    shas = gitlab.add_commits(5)
    for i, sha in enumerate(shas[::2]):
        gitlab.add_deployment(sha, minutes=10 * i)
    return github, gitlab


def test_sync_collects_github_and_gitlab_services_of_one_tenant(
    cli_env: Database, hosts: tuple[FakeGitHub, FakeGitLab]
) -> None:
    result = runner.invoke(app, ["sync", "--tenant", "acme"])

    assert result.exit_code == 0, result.output
    assert "web" in result.output and "shop" in result.output
    with unit_of_work(cli_env.engine) as session:
        frames = TenantRepository.open(session, "acme").delivery_frames()
    assert frames.deployments.groupby("service").size().to_dict() == {"shop": 3, "web": 2}
    github, gitlab = hosts
    for token in (github.token, gitlab.token):
        assert token not in result.output


def test_sync_reports_a_rate_limit_stop_and_exits_zero(
    sqlite_cli_env: Database, hosts: tuple[FakeGitHub, FakeGitLab]
) -> None:
    github, _ = hosts
    github.fail(
        r"/deployments$",
        429,
        {"X-RateLimit-Reset": str(int(time.time()) + 900)},
        {"message": "API rate limit exceeded"},
    )

    result = runner.invoke(app, ["sync", "--tenant", "acme"])

    assert result.exit_code == 0, result.output
    assert "warning: acme/web stopped early: github acme/shop: rate limited" in result.output


def test_sync_with_bad_github_token_is_one_line_and_the_other_source_still_syncs(
    sqlite_cli_env: Database, hosts: tuple[FakeGitHub, FakeGitLab], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLI_GITHUB_TOKEN", "ghp_notTheRightOne")

    result = runner.invoke(app, ["sync", "--tenant", "acme"])

    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        "error: acme/web (github): github acme/shop: the token in CLI_GITHUB_TOKEN"
    )
    assert "1 of 2 source(s) synced" in result.stdout and "1 failed" in result.stdout
    assert "ghp_notTheRightOne" not in result.output
