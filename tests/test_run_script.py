"""`./run test` runs the PostgreSQL variants whenever PostgreSQL answers on 127.0.0.1:5432,
as `.ci/run` does (the pytest header says which backends ran)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _postgres_answers() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), 1).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _postgres_answers(), reason="no PostgreSQL on 127.0.0.1:5432")
def test_run_test_turns_on_postgresql_when_it_answers():
    env = {k: v for k, v in os.environ.items() if k != "INSIGHTS_TEST_POSTGRES_URL"}
    done = subprocess.run(
        [str(ROOT / "run"), "test", "--collect-only", "tests/test_run_script.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run: PostgreSQL answers on 127.0.0.1:5432" in done.stderr
    assert "storage tests: SQLite and PostgreSQL" in done.stdout


def test_an_explicit_postgres_url_is_left_alone():
    env = {**os.environ, "INSIGHTS_TEST_POSTGRES_URL": "postgresql+psycopg://nobody@127.0.0.1:1/x"}
    done = subprocess.run(
        [str(ROOT / "run"), "test", "--collect-only", "tests/test_run_script.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "run: PostgreSQL answers" not in done.stderr
    assert "nobody@127.0.0.1:1/x" in done.stdout  # the header names the configured server
