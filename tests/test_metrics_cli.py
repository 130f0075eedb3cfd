"""`insights compute`, `metrics` and `gate` run the way a user runs them (Typer's CliRunner)."""

from __future__ import annotations

import json

import pytest
from metrics_support import commit, dep, incident
from typer.testing import CliRunner

from insights.cli import app
from insights.store.db import unit_of_work
from insights.store.repository import TenantRepository

runner = CliRunner()

EVENTS = [
    commit("aa01", "01-05 08:00"),
    commit("bb02", "01-05 09:00", ("aa01",)),
    commit("cc03", "01-05 10:00", ("bb02",)),
    dep("d1", "aa01", "01-05 09:30", commits=["aa01"]),
    dep("d2", "bb02", "01-05 12:00", commits=["bb02"]),
    dep("d3", "cc03", "01-06 12:00", commits=["cc03"]),
    incident("INC-1", "01-06 13:00", "01-06 15:00", deployment_id="d3"),
]
OUTPUT_KEYS = {
    "tenant",
    "scope",
    "window",
    "deployment_count",
    "deployments_per_week",
    "deployment_days_share",
    "lead_time_hours",
    "change_failure_rate",
    "failed_deployments",
    "recovery_time_hours",
    "rework_rate",
    "lead_time_breakdown_hours",
    "tier",
    "previous",
}


@pytest.fixture
def loaded(cli_env, tmp_path):
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(json.dumps(e) for e in EVENTS) + "\n")
    assert runner.invoke(app, ["tenant", "create", "acme"]).exit_code == 0
    result = runner.invoke(app, ["import", str(path), "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    return cli_env


def invoke(*args: str):
    return runner.invoke(app, [*args, "--tenant", "acme"])


def test_metrics_json_has_the_design_output_keys_plus_intervals_and_verdicts(loaded):
    result = invoke("metrics", "--scope", "service:checkout", "--window", "2026-W02", "-f", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == OUTPUT_KEYS | {"intervals", "verdicts"}
    assert set(doc["previous"]) == OUTPUT_KEYS - {"tenant", "scope", "previous"} | {"intervals"}
    assert doc["intervals"]["change_failure_rate"] == {"low": 0.0615, "high": 0.7923, "samples": 3}
    assert doc["verdicts"]["change_failure_rate"]["previous"]["verdict"] == "too little data"
    assert doc["scope"] == {"kind": "service", "name": "checkout"}
    assert doc["window"] == {"start": "2026-01-05T00:00:00Z", "end": "2026-01-12T00:00:00Z"}
    assert doc["deployment_count"] == 3
    assert doc["failed_deployments"] == 1
    assert doc["change_failure_rate"] == round(1 / 3, 4)
    assert doc["lead_time_hours"] == {"median": 3.0, "p75": 14.5, "p90": 21.4, "samples": 3}
    assert doc["recovery_time_hours"] == {"median": 2.0, "p90": 2.0, "samples": 1}
    assert set(doc["lead_time_breakdown_hours"]) == {"coding", "pickup", "review", "deploy"}
    assert set(doc["tier"]) == {
        "deployment_frequency",
        "lead_time",
        "change_failure_rate",
        "recovery_time",
        "overall",
    }
    assert doc["previous"]["deployment_count"] == 0
    assert doc["previous"]["change_failure_rate"] is None


def test_metrics_markdown_goes_to_stdout_and_the_github_step_summary(loaded, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = invoke("metrics", "--scope", "tenant", "--window", "2026-W02", "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert "| Change failure rate | 33.3% | no data |" in result.stdout
    assert summary.read_text() == result.stdout + "\n"


def test_metrics_table_is_the_default_format(loaded):
    result = invoke("metrics", "--from", "2026-01-05", "--to", "2026-01-07")
    assert result.exit_code == 0, result.output
    assert "2026-01-05..2026-01-07" in result.stdout
    assert "Deployment rate" in result.stdout


def test_compute_stores_snapshots_for_every_scope(loaded):
    result = invoke("compute", "--window", "2026-W02")
    assert result.exit_code == 0, result.output
    assert "service:checkout" in result.stdout and "tenant:acme" in result.stdout
    with unit_of_work(loaded.engine) as session:
        repo = TenantRepository.open(session, "acme")
        from insights.metrics.windows import week

        w = week(2026, 2)
        assert repo.snapshot("tenant", "acme", w.start, w.end).data["deployment_count"] == 3


def test_gate_passes_with_exit_0_when_no_rule_is_breached(loaded):
    result = invoke(
        "gate",
        "--max-change-failure-rate",
        "0.5",
        "--max-lead-time",
        "48h",
        "--min-deployments-per-week",
        "1",
        "--window",
        "2026-W02",
    )
    assert result.exit_code == 0, result.output
    assert "gate passed: tenant:acme 2026-W02" in result.stdout


def test_gate_breach_exits_1_with_one_line_per_breached_rule(loaded):
    result = invoke(
        "gate",
        "--max-change-failure-rate",
        "0.15",
        "--max-lead-time",
        "90m",
        "--min-deployments-per-week",
        "1",
        "--scope",
        "service:checkout",
        "--window",
        "2026-W02",
    )
    assert result.exit_code == 1
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert fails == [
        "FAIL: change failure rate breached: 0.33 (limit max 0.15)",
        "FAIL: lead time (median) breached: 3 h (limit max 1.5 h)",
    ]
    assert "gate failed: 2 rule(s) breached" in result.stderr


def test_gate_on_an_empty_window_says_so_and_fails_only_the_minimum_frequency(loaded):
    result = invoke(
        "gate", "--max-change-failure-rate", "0.15", "--window", "2026-W10", "--format", "text"
    )
    assert result.exit_code == 0, result.output
    assert "no production deployments in tenant:acme 2026-W10" in result.stdout
    assert "skip: change failure rate: no data in this window, not evaluated" in result.stdout
    result = invoke("gate", "--min-deployments-per-week", "1", "--window", "2026-W10")
    assert result.exit_code == 1
    assert "FAIL: deployments per week breached: 0 (limit min 1)" in result.stdout


def test_gate_markdown_appends_to_the_github_step_summary(loaded, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = invoke(
        "gate", "--max-change-failure-rate", "0.1", "-w", "2026-W02", "--format", "markdown"
    )
    assert result.exit_code == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n### DORA gate failed: tenant acme, 2026-W02")
    assert "| change failure rate | 0.33 | max 0.1 | ❌ breach |" in text


BAD_INPUT = [
    (["metrics", "--window", "2026-W99"], "error: window 2026-W99: no such ISO week"),
    (["metrics", "--scope", "repo:x"], "error: scope 'repo:x'"),
    (["metrics", "--scope", "service:nope"], "error: service 'nope': not found"),
    (["metrics", "--window", "2026-W02", "--from", "2026-01-01"], "not both"),
    (["metrics", "--from", "2026-01-01"], "give both ends"),
    (["metrics", "--from", "2026-01-09", "--to", "2026-01-02"], "must be after --from"),
    (["gate"], "give at least one rule"),
    (["gate", "--max-lead-time", "soon"], "--max-lead-time 'soon'"),
    (["gate", "--max-change-failure-rate", "15"], "at most 1 (100%) (did you mean 15%?)"),
    (["gate", "--max-change-failure-rate", "fifteen"], "a fraction (0.15) or a percentage (15%)"),
    (["gate", "--max-change-failure-rate", "150%"], "at most 1 (100%)"),
    (["metrics", "--service", "checkout", "--team", "payments"], "give only one of"),
    (["metrics", "--scope", "tenant:other"], "names tenant 'other' but --tenant is 'acme'"),
]


def test_bad_input_is_one_line_on_stderr_with_exit_2(loaded):
    for args, message in BAD_INPUT:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr
        assert "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_tenant_is_exit_2(cli_env):
    result = runner.invoke(app, ["metrics", "--tenant", "ghost"])
    assert result.exit_code == 2
    assert "tenant 'ghost': not found" in result.stderr


def test_gate_breach_on_three_deployments_says_it_rests_on_very_few_samples(loaded):
    result = invoke(
        "gate",
        "--max-change-failure-rate",
        "0.15",
        "--scope",
        "service:checkout",
        "--window",
        "2026-W02",
    )
    assert result.exit_code == 1  # the gate still compares the figure with its limit
    lines = result.stdout.splitlines()
    at = lines.index("FAIL: change failure rate breached: 0.33 (limit max 0.15)")
    assert lines[at + 1] == (
        "  note: rests on only 3 deployments; the 95% interval 0.06–0.79 includes the limit 0.15"
    )
    result = invoke(
        "gate", "--max-change-failure-rate", "0.15", "-w", "2026-W02", "--format", "markdown"
    )
    assert "> change failure rate: rests on only 3 deployments" in result.stdout
