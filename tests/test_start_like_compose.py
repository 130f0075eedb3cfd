"""The app started the way docker-compose.yml starts it (migrations, then `insights serve`)
against the real local PostgreSQL, on an empty database: /healthz answers, and the scheduler
inside `serve` runs a job (Docker itself does not run here)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "start_like_compose.sh"


@pytest.fixture
def empty_postgres(postgres_server):
    if postgres_server is None:
        pytest.skip("PostgreSQL not configured: set INSIGHTS_TEST_POSTGRES_URL to run")
    name = f"{postgres_server.prefix}_compose_{uuid.uuid4().hex[:6]}"
    postgres_server._create(name)  # no template: as empty as a fresh compose volume
    url = postgres_server.url_of(name)
    yield url
    postgres_server.drop(url)


@pytest.mark.slow
def test_compose_start_migrates_an_empty_database_serves_healthz_and_schedules(
    empty_postgres, tmp_path
):
    (tmp_path / "insights.toml").write_text(
        '[[tenants]]\nname = "acme"\n[tenants.schedule]\nsync_cron = "*/2 * * * * *"\n'
    )
    env = {
        **os.environ,
        "INSIGHTS_CONFIG": str(tmp_path / "insights.toml"),
        "INSIGHTS_REPORTS_DIR": str(tmp_path / "reports"),
        "WAIT_FOR_JOB": "sync",
        "HEALTH_TIMEOUT": "90",
    }
    done = subprocess.run(
        [str(SCRIPT), empty_postgres],
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    health = json.loads(done.stdout[done.stdout.index("{") : done.stdout.rindex("}") + 1])
    assert (health["status"], health["database"]) == ("ok", "ok")
    scheduler = health["scheduler"]
    assert scheduler["enabled"] is True and scheduler["leader"] is True
    assert scheduler["jobs"] == 2
    assert scheduler["last_runs"]["sync"]["outcome"] == "success"
    assert "acme" not in json.dumps(health)  # /healthz is public: no tenant names
    engine = create_engine(empty_postgres)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"tenants", "job_runs", "apscheduler_jobs", "alembic_version"} <= tables
