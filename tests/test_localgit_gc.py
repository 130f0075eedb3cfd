"""A local-git sync pauses the cyclic garbage collector only while it runs."""

from __future__ import annotations

import gc

import pytest
from git_support import fast_history
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from insights.collect.localgit import sync_local_repo


@pytest.mark.parametrize("was_enabled", [True, False])
def test_sync_leaves_the_garbage_collector_as_it_found_it(db, tmp_path, was_enabled):
    repo = fast_history(tmp_path / "repo", 30, tag_every=10)
    try:
        gc.enable() if was_enabled else gc.disable()
        report = sync_local_repo(db.engine, repo.path, service="app")
        assert gc.isenabled() is was_enabled
    finally:
        gc.enable()
    assert report.counts["commit"].new == 30


def test_sync_failing_midway_turns_the_garbage_collector_back_on(db, tmp_path):
    repo = fast_history(tmp_path / "repo", 30, tag_every=10)
    with db.engine.begin() as conn:  # storing the shipped commits will fail
        conn.execute(text("DROP TABLE deployment_commits"))
    with pytest.raises(DBAPIError):
        sync_local_repo(db.engine, repo.path, service="app")
    assert gc.isenabled()
