"""Shipped commits derived from the commit graph agree with `git rev-list` on a real repo."""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

import numpy as np
from metrics_support import frames

from insights.metrics.compute import shipments


def git(repo: Path, *args: str, when: str | None = None) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
    }
    if when:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when
    out = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    )
    return out.stdout.strip()


def build_repo(repo: Path) -> dict[str, str]:
    """main: c1 → c2 → (branch c3a, c3b merged by m4) → c5; returns name → sha."""
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    shas = {}

    def commit(name: str, hour: int) -> None:
        (repo / f"{name}.txt").write_text(name)
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", name, when=f"2026-01-05T{hour:02d}:00:00+02:00")
        shas[name] = git(repo, "rev-parse", "HEAD")

    commit("c1", 8)
    commit("c2", 9)
    git(repo, "checkout", "-q", "-b", "feature")
    commit("c3a", 10)
    commit("c3b", 11)
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "m4", "feature", when="2026-01-05T12:00:00+02:00")
    shas["m4"] = git(repo, "rev-parse", "HEAD")
    commit("c5", 13)
    return shas


def commit_events(repo: Path) -> list[dict]:
    events = []
    for line in git(repo, "log", "--all", "--format=%H %cI %P").splitlines():
        sha, committed, *parents = line.split()
        events.append(
            {
                "type": "commit",
                "service": "app",
                "sha": sha,
                "committed_at": committed,
                "parents": parents,
            }
        )
    return events


def shipped_by(events: list[dict]) -> dict[str, set[str]]:
    rows = shipments(frames(events))
    out: dict[str, set[str]] = {e["id"]: set() for e in events if e["type"] == "deployment"}
    for deployment, sha in zip(rows["deployment"], rows["sha"], strict=True):
        out[deployment].add(sha)
    return out


def test_graph_derived_shipped_commits_match_git_rev_list(tmp_path):
    repo = tmp_path / "app"
    s = build_repo(repo)
    deploys = [
        ("d1", "c2", "01-05 10:30"),
        ("d2", "m4", "01-05 11:30"),
        ("d3", "c5", "01-05 12:30"),
    ]
    events = commit_events(repo)
    for name, ref, at in deploys:
        day, clock = at.split()
        events.append(
            {
                "type": "deployment",
                "service": "app",
                "id": name,
                "sha": s[ref],
                "finished_at": f"2026-{day}T{clock}:00Z",
            }
        )
    shipped = shipped_by(events)
    assert shipped["d1"] == set()  # first deployment: no predecessor
    for (_, previous, _), (name, ref, _) in itertools.pairwise(deploys):
        expected = set(git(repo, "rev-list", s[ref], f"^{s[previous]}").split())
        assert shipped[name] == expected
    assert shipped["d2"] == {s["c3a"], s["c3b"], s["m4"]}


def test_lead_times_from_a_real_repo_use_commit_times_with_offsets_in_utc(tmp_path):
    from datetime import UTC, datetime

    from insights.metrics.compute import compute
    from insights.metrics.windows import parse_window

    repo = tmp_path / "app"
    s = build_repo(repo)
    events = commit_events(repo)
    events += [
        {
            "type": "deployment",
            "service": "app",
            "id": "d1",
            "sha": s["c1"],
            "finished_at": "2026-01-05T06:30:00Z",
        },
        {
            "type": "deployment",
            "service": "app",
            "id": "d2",
            "sha": s["c5"],
            "finished_at": "2026-01-05T12:00:00Z",
        },
    ]
    m = compute(frames(events), parse_window("2026-W02", datetime(2026, 3, 1, tzinfo=UTC)))
    # c2..c5 committed 07:00..11:00 UTC (09:00..13:00 +02:00), deployed 12:00 UTC
    expected = np.array([5.0, 4.0, 3.0, 2.0, 1.0])  # c2, c3a, c3b, m4, c5
    assert m.lead_time_hours.samples == 5
    assert m.lead_time_hours.median == float(np.median(expected))
    assert m.lead_time_hours.p90 == round(float(np.percentile(expected, 90)), 2)
