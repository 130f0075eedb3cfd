"""Real git repositories for tests: commits with chosen dates, tags, branches, merges."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

BASE_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
    "GIT_AUTHOR_NAME": "Ada",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
}


class GitRepo:
    """A repository in a tmp dir; every write takes the date it should carry."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, date: str | None = None, author_date: str | None = None) -> str:
        env = {**os.environ, **BASE_ENV}
        if date:
            env["GIT_COMMITTER_DATE"] = date
            env["GIT_AUTHOR_DATE"] = author_date or date
        done = subprocess.run(
            ["git", "-C", str(self.path), *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def commit(self, message: str, date: str, author_date: str | None = None) -> str:
        self.git("commit", "-q", "--allow-empty", "-m", message, date=date, author_date=author_date)
        return self.head()

    def head(self, rev: str = "HEAD") -> str:
        return self.git("rev-parse", rev)

    def tag(self, name: str, rev: str = "HEAD", date: str | None = None) -> None:
        """Annotated (tagger date = `date`) when a date is given, else lightweight."""
        if date:
            self.git("tag", "-a", "-m", name, name, rev, date=date)
        else:
            self.git("tag", name, rev)

    def checkout(self, branch: str, create: bool = False, start: str | None = None) -> None:
        self.git("checkout", "-q", *(["-b"] if create else []), branch, *([start] if start else []))

    def merge(self, branch: str, date: str, message: str | None = None) -> str:
        self.git("merge", "-q", "--no-ff", "-m", message or f"Merge {branch}", branch, date=date)
        return self.head()

    def rev_list(self, *revs: str) -> set[str]:
        out = self.git("rev-list", *revs)
        return set(out.split()) if out else set()


def fast_history(path: Path, commits: int, tag_every: int = 0) -> GitRepo:
    """A linear history of `commits` commits (one a minute from 2026-01-01) made with
    `git fast-import`; every `tag_every`-th commit gets a lightweight tag v<n>."""
    repo = GitRepo(path)
    lines = []
    start = 1_767_225_600  # 2026-01-01T00:00:00Z
    for n in range(1, commits + 1):
        when = start + 60 * n
        message = f"change {n}\n"
        lines += [
            "commit refs/heads/main",
            f"mark :{n}",
            f"author Ada <ada@example.com> {when} +0200",
            f"committer Ada <ada@example.com> {when} +0200",
            f"data {len(message.encode())}",
            message.rstrip("\n"),
        ]
        if n > 1:
            lines.append(f"from :{n - 1}")
        lines.append("")
        if tag_every and n % tag_every == 0:
            lines += [f"reset refs/tags/v{n // tag_every}", f"from :{n}", ""]
    subprocess.run(
        ["git", "-C", str(path), "fast-import", "--quiet"],
        input="\n".join(lines) + "\n",
        text=True,
        check=True,
        env={**os.environ, **BASE_ENV},
    )
    return repo
