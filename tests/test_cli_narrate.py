"""`insights narrate` and `insights usage` run the way a user runs them (Typer's CliRunner),
against a real database and a local OpenAI-compatible server."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from llm_support import chat_body
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner

from insights.cli import app
from insights.timeutil import now

runner = CliRunner()
PATH = "/v1/chat/completions"
KEY = "sk-cli-secret-4242"

EVENTS = [
    {
        "type": "commit",
        "service": "checkout",
        "sha": "c0ffee01",
        "committed_at": "2026-01-26T09:00:00Z",
    },
    {
        "type": "deployment",
        "service": "checkout",
        "id": "d-1",
        "sha": "c0ffee01",
        "finished_at": "2026-01-27T09:00:00Z",
        "commits": ["c0ffee01"],
    },
]

ANSWER = {
    "summary": "Checkout shipped 1 deployment in 2026-W05 with a median lead time of 24 hours.",
    "highlights": ["1 deployment reached production."],
    "recommendations": [
        {
            "title": "Deploy smaller batches more often",
            "why": "Only 1 deployment this week; more frequent releases shorten lead time.",
            "metric": "deployment_frequency",
            "capability": "working in small batches",
            "evidence": ["deployments: 1"],
        }
    ],
}


@pytest.fixture
def acme(cli_env: Any, tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch):
    """Tenant acme with checkout events and its narration routed to the local server."""
    config = tmp_path / "insights.toml"
    config.write_text(
        f"""
[[tenants]]
name = "acme"
[tenants.llm]
provider = "openai"
model = "qwen2.5:7b"
base_url = "{httpserver.url_for("/v1")}"
api_key_env = "ACME_LLM_KEY"
monthly_token_budget = 100000
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("INSIGHTS_CONFIG", str(config))
    monkeypatch.setenv("ACME_LLM_KEY", KEY)
    events = tmp_path / "events.ndjson"
    events.write_text("\n".join(json.dumps(e) for e in EVENTS) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["import", str(events), "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    return cli_env


def test_narrate_prints_the_narrative_and_who_wrote_it(
    acme: Any, httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        chat_body(json.dumps(ANSWER), model="qwen2.5:7b", prompt_tokens=1200, completion_tokens=90)
    )
    args = ["narrate", "--scope", "service:checkout", "--window", "2026-W05", "--tenant", "acme"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "service checkout, 2026-W05" in first.stdout
    assert "1. Deploy smaller batches more often [deployment_frequency]" in first.stdout
    assert "   DORA capability: working in small batches" in first.stdout
    assert "written by: openai qwen2.5:7b (accepted); 1200 tokens in, 90 out" in first.stdout
    assert KEY not in first.output
    assert httpserver.log[0][0].headers["Authorization"] == f"Bearer {KEY}"

    again = runner.invoke(app, args)
    assert "written by: openai qwen2.5:7b (cached: same facts" in again.stdout
    assert len(httpserver.log) == 1

    builtin = runner.invoke(app, [*args, "--provider", "builtin", "--format", "json"])
    assert builtin.exit_code == 0, builtin.output
    assert json.loads(builtin.stdout)["outcome"] == "builtin"

    month = f"{now():%Y-%m}"
    usage = runner.invoke(app, ["usage", "--tenant", "acme", "--month", month])
    assert usage.exit_code == 0, usage.output
    assert "qwen2.5:7b" in usage.stdout and "1200" in usage.stdout and "accepted 1" in usage.stdout
    assert "acme: 1290 of 100000 tokens (1% of the monthly budget)" in usage.stdout
    assert KEY not in usage.output
    assert "narrative accepted by openai" in caplog.text and KEY not in caplog.text


def test_narrate_with_the_provider_down_still_prints_a_narrative(
    acme: Any, httpserver: HTTPServer
) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"error": {"message": "upstream down"}}, status=502
    )
    result = runner.invoke(
        app, ["narrate", "--scope", "service:checkout", "--window", "2026-W05", "-t", "acme"]
    )
    assert result.exit_code == 0, result.output
    assert "written by: built-in narrator (fallback: openai failed:" in result.stdout
    assert "HTTP 502: upstream down" in result.stdout


def test_usage_of_an_empty_month_says_so(acme: Any) -> None:
    result = runner.invoke(app, ["usage", "--month", "2025-12"])
    assert result.exit_code == 0, result.output
    assert "no narratives in 2025-12" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["narrate", "--provider", "gpt"], "error: --provider 'gpt': use one of builtin"),
        (["narrate", "--format", "xml"], "error: Invalid value for '--format'"),
        (["usage", "--month", "2026-13"], "error: --month: '2026-13' is not a month like 2026-01"),
    ],
)
def test_bad_option_is_one_line_error_before_touching_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    database = tmp_path / "untouched.db"
    monkeypatch.setenv("INSIGHTS_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not database.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["narrate", "--window", "last-tuesday", "-t", "acme"], "error: window 'last-tuesday'"),
        (["narrate", "--scope", "service:nope", "-t", "acme"], "error: service 'nope'"),
        (["usage", "--tenant", "ghost"], "error: tenant 'ghost': not found"),
    ],
)
def test_unknown_window_scope_or_tenant_is_one_line_error_and_exit_2(
    acme: Any, args: list[str], message: str
) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
