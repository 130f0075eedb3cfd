"""Alembic environment: runs migrations on the engine handed over by insights.store.db."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from insights.store.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    engine = config.attributes.get("engine")
    if engine is None:  # plain `alembic` CLI: take the URL from the environment or alembic.ini
        from insights.config import Settings
        from insights.store.db import normalize_url

        url = config.get_main_option("sqlalchemy.url") or Settings().database_url
        engine = create_engine(normalize_url(url))
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


run()
