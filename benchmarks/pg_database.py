"""A fresh PostgreSQL database for one benchmark run, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def postgres_database(base_url: str, prefix: str = "insights_bench") -> Iterator[str]:
    """The URL of a new, empty database `<prefix>_<random>` on the server of `base_url`;
    afterwards this process's pooled engine of it is disposed and the database dropped (with
    `FORCE`: a benchmark's child processes may still hold connections)."""
    from insights.store.db import dispose_engine, normalize_url

    base = make_url(normalize_url(base_url))
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        dispose_engine(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
