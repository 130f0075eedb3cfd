"""Shared fixtures: real databases (SQLite always, PostgreSQL when INSIGHTS_TEST_POSTGRES_URL
is set), each test on its own freshly migrated database."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from insights.store.db import dispose_engine, engine_for, migrate, normalize_url

POSTGRES_URL = os.environ.get("INSIGHTS_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgresql"]


def pytest_report_header(config: pytest.Config) -> str:
    if POSTGRES_URL:
        where = make_url(normalize_url(POSTGRES_URL)).render_as_string(hide_password=True)
        return f"storage tests: SQLite and PostgreSQL ({where})"
    return "storage tests: SQLite only; PostgreSQL SKIPPED (set INSIGHTS_TEST_POSTGRES_URL)"


@dataclass
class Database:
    """A migrated, empty database for one test."""

    url: str
    engine: Engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


class _PostgresServer:
    """Creates one migrated template database per test run and clones it for each test."""

    def __init__(self, url: str) -> None:
        self.base = make_url(normalize_url(url))
        self.admin = create_engine(self.base, isolation_level="AUTOCOMMIT")
        self.prefix = f"insights_t{uuid.uuid4().hex[:8]}"
        self.template = f"{self.prefix}_tpl"
        self.created: list[str] = []
        self._create(self.template)
        template_url = self.url_of(self.template)
        migrate(engine_for(template_url))
        dispose_engine(template_url)

    def url_of(self, name: str) -> str:
        return self.base.set(database=name).render_as_string(hide_password=False)

    def _create(self, name: str, template: str | None = None) -> None:
        clause = f" TEMPLATE {template}" if template else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self.created.append(name)

    def fresh(self) -> str:
        name = f"{self.prefix}_{uuid.uuid4().hex[:8]}"
        self._create(name, self.template)
        return self.url_of(name)

    def drop(self, url: str) -> None:
        dispose_engine(url)
        name = make_url(url).database
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self.created:
            self.created.remove(name)

    def close(self) -> None:
        for name in list(self.created):
            self.drop(self.url_of(name))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[_PostgresServer | None]:
    if not POSTGRES_URL:
        yield None
        return
    server = _PostgresServer(POSTGRES_URL)
    yield server
    server.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    url = f"sqlite:///{path}"
    migrate(engine_for(url))
    dispose_engine(url)
    return path


def _database(
    backend: str,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_server: _PostgresServer | None,
) -> Iterator[Database]:
    if backend == "postgresql":
        if postgres_server is None:
            pytest.skip("PostgreSQL not configured: set INSIGHTS_TEST_POSTGRES_URL to run")
        url = postgres_server.fresh()
        try:
            yield Database(url, engine_for(url))
        finally:
            postgres_server.drop(url)
        return
    path = tmp_path / "insights.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    try:
        yield Database(url, engine_for(url))
    finally:
        dispose_engine(url)


@pytest.fixture(params=BACKENDS)
def db(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_server: _PostgresServer | None,
) -> Iterator[Database]:
    """A migrated empty database; the test runs once on SQLite and once on PostgreSQL."""
    yield from _database(request.param, tmp_path, sqlite_template, postgres_server)


@pytest.fixture
def sqlite_db(tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    """A migrated empty SQLite database (for tests that exercise logic, not storage)."""
    yield from _database("sqlite", tmp_path, sqlite_template, None)


@pytest.fixture
def pg_db(
    tmp_path: Path, sqlite_template: Path, postgres_server: _PostgresServer | None
) -> Iterator[Database]:
    """A migrated empty PostgreSQL database; skipped (and said so) without one."""
    yield from _database("postgresql", tmp_path, sqlite_template, postgres_server)


@pytest.fixture
def cli_env(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    """Environment for running the CLI against `db`, from an empty working directory."""
    monkeypatch.setenv("INSIGHTS_DATABASE_URL", db.url)
    monkeypatch.delenv("INSIGHTS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return db
