"""Reports that read true on a real project history: a library with release tags over two years,
reported for a week, a quarter and a year through `insights demo --repo`, as a user runs it.

The history (built once, with git, in a tmp dir): a commit every three days from 2024-01-02,
a feature branch merged every 30 commits, a release tag about every 45 days, no release in
2025-Q2 (commits go on), a re-tag of the previous release's commit in 2025-Q3 (a rollback), no
incidents at all, and a `refs/pull/*` head whose commits are not the project's history.
"""

from __future__ import annotations

import html as html_lib
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from git_support import BASE_ENV, GitRepo
from typer.testing import CliRunner

from insights.cli import app

START = datetime(2024, 1, 2, 10, 0, tzinfo=UTC)
END = datetime(2025, 12, 30, tzinfo=UTC)
QUIET = (datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC))
SERVICE = "libpkg"


class _Stream:
    """A `git fast-import` stream: the whole history is written by one git process (a few
    hundred `git commit` calls would make this module slow)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.marks = 0

    def commit(self, ref: str, message: str, when: datetime, parents: list[int]) -> int:
        self.marks += 1
        stamp = f"{int(when.timestamp())} +0000"
        self.lines += [
            f"commit {ref}",
            f"mark :{self.marks}",
            f"author Ada <ada@example.com> {stamp}",
            f"committer Ada <ada@example.com> {stamp}",
            f"data {len(message.encode())}",
            message,
        ]
        if parents:
            self.lines.append(f"from :{parents[0]}")
        self.lines += [f"merge :{p}" for p in parents[1:]]
        self.lines.append("")
        return self.marks

    def tag(self, name: str, mark: int, when: datetime) -> None:
        self.lines += [
            f"tag {name}",
            f"from :{mark}",
            f"tagger Ada <ada@example.com> {int(when.timestamp())} +0000",
            f"data {len(name)}",
            name,
        ]


def _build_history(path: Path) -> tuple[GitRepo, set[str]]:
    """The library's history (see the module docstring); returns the repo and the shas that
    only a pull-request head reaches."""
    repo = GitRepo(path)
    stream = _Stream()
    when, n, minor, head = START, 0, 0, 0
    last_release = START - timedelta(days=60)
    released: list[int] = []
    while when < END:
        n += 1
        parents = [head] if head else []
        if n % 30 == 0:
            one = stream.commit(
                f"refs/heads/feature-{n}", f"feature {n} one", when - timedelta(hours=30), parents
            )
            two = stream.commit(
                f"refs/heads/feature-{n}", f"feature {n} two", when - timedelta(hours=6), [one]
            )
            head = stream.commit("refs/heads/main", f"Merge feature-{n}", when, [head, two])
        else:
            head = stream.commit("refs/heads/main", f"change {n}", when, parents)
        quiet = QUIET[0] <= when < QUIET[1]
        if when - last_release >= timedelta(days=45) and not quiet:
            minor += 1
            stream.tag(f"v1.{minor}.0", head, when + timedelta(days=1))
            released.append(head)
            last_release = when
            if minor == 12:  # in 2025-Q3: the release is undone by re-tagging the one before
                stream.tag(f"v1.{minor}.1", released[-2], when + timedelta(days=3))
        when += timedelta(days=3)
    # A mirror's pull-request head: commits never merged, in the middle of 2025-Q3.
    pr = head - 60
    for i in range(5):
        pr = stream.commit(
            "refs/pull/9/head",
            f"unmerged pr commit {i}",
            datetime(2025, 8, 5 + i, tzinfo=UTC),
            [pr],
        )
    subprocess.run(
        ["git", "-C", str(path), "fast-import", "--quiet"],
        input="\n".join(stream.lines) + "\n",
        text=True,
        check=True,
        env={**os.environ, **BASE_ENV},
    )
    for name in [
        line.split()[1] for line in stream.lines if line.startswith("commit refs/heads/f")
    ]:
        repo.git("update-ref", "-d", name)  # merged feature branches are deleted, as usual
    pr_only = set(repo.git("rev-list", "refs/pull/9/head", "--not", "main").split())
    return repo, pr_only


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[GitRepo, set[str]]:
    return _build_history(tmp_path_factory.mktemp("real") / SERVICE)


@pytest.fixture(scope="module")
def reports(history, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The service report's HTML for a week, a quarter and a year window."""
    repo, _ = history
    out = {}
    for window in ("2025-W36", "2025-Q3", "2025"):
        target = tmp_path_factory.mktemp(f"out-{window}")
        result = CliRunner().invoke(
            app, ["demo", "--repo", str(repo.path), "--window", window, "--out", str(target)]
        )
        assert result.exit_code == 0, result.output
        label = window
        out[window] = (target / "demo" / label / f"service-{SERVICE}.html").read_text()
    return out


def text_of(page: str, section: str | None = None) -> str:
    """The visible text of a report (or of one `<section>` whose heading starts with
    `section`), tags and SVG removed, entities decoded, whitespace collapsed."""
    page = re.sub(r"<svg\b.*?</svg>", " ", page, flags=re.S)
    page = re.sub(r"<style\b.*?</style>", " ", page, flags=re.S)
    if section is not None:
        match = re.search(rf"<h2>{re.escape(section)}.*?</section>", page, flags=re.S)
        assert match, f"no section {section!r}"
        page = match.group(0)
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", page))).strip()


def cards(page: str) -> str:
    match = re.search(r'<div class="cards">.*?</div>\s*\n<section>', page, flags=re.S)
    assert match
    return text_of(match.group(0))


HOUR_FIGURE = re.compile(r"(\d+(?:\.\d+)?) ?(?:h|hours?)\b")


def hour_figures(text: str) -> list[float]:
    return [float(m) for m in HOUR_FIGURE.findall(text)]


@pytest.mark.parametrize("window", ["2025-W36", "2025-Q3", "2025"])
def test_headline_and_narrative_never_show_more_than_72_hours(reports, window):
    page = reports[window]
    headline = cards(page) + " " + text_of(page, "Summary") + " " + text_of(page, "Recommend")
    assert all(v < 72 for v in hour_figures(headline)), hour_figures(headline)
    assert not re.search(r"\b0 per day\b", headline)


@pytest.mark.parametrize("window", ["2025-W36", "2025-Q3", "2025"])
def test_no_incident_advice_without_incidents(reports, window):
    text = text_of(reports[window]).lower()
    assert "post-incident" not in text
    assert "incident review" not in text


@pytest.mark.parametrize("window", ["2025-W36", "2025-Q3", "2025"])
def test_a_release_tagged_library_reads_releases_and_says_what_it_counts(reports, window):
    text = text_of(reports[window])
    assert "What counts as a release here: each version tag (not pre-releases)." in text
    assert "every day" not in text and "deploy each merged change" not in text
    assert "Release frequency" in cards(reports[window])


def test_quarter_report_reads_true(reports):
    page = reports["2025-Q3"]
    summary = text_of(page, "Summary").removeprefix("Summary ")
    # v1.12.0, its rollback v1.12.1 (re-tags v1.11.0's commit), v1.13.0, v1.14.0.
    assert summary.startswith("Service libpkg made 4 releases in 2025-Q3 (1.3 per month)")
    assert "Measured to each release, the median lead time was " in summary
    # The quiet quarter before is quoted in the same unit as this one.
    assert "from 0 releases per month to 1.3 releases per month" in summary
    # History: calendar quarters back to 2022-Q4; releases since 2024-Q1, none in 2025-Q2.
    assert "Trends over 12 quarters (releases in 6 of them)" in text_of(page)
    assert ">2023-Q2<" in page and ">2025-Q3<" in page and "2022-12-24" not in page
    # Trend claims count only windows with data: 2024-Q1 .. 2025-Q3 is 7 quarters at most.
    # (a trend is claimed only where the verdicts back it; any claim must count data windows)
    for with_data, qualified in re.findall(
        r"over (?:the )?(\d+) windows( with data \(of 12\))?", text_of(page)
    ):
        assert qualified and int(with_data) <= 7
    assert (
        "Release frequency 4 releases medium ▲ +4 vs 2025-Q2 · too few deployments to judge "
        "1.3 per month" in cards(page)
    )
    # The rollback, with no incidents recorded, gets rollback advice.
    recs = text_of(page, "Recommend")
    assert "rolled back" in recs or "Rolled back" in recs or "rollback" in recs
    # Commit samples exist but no pull requests: the slowest table says which is which.
    slowest = text_of(page, "Slowest")
    assert "No pull request shipped in this window" in slowest
    assert "No change with a known lead time" not in slowest
    # Lead time of release-tagged commits runs to weeks: read in days or weeks.
    assert re.search(r"\d+(\.\d)? (days|weeks) median", cards(page))


def test_quarter_coverage_counts_branch_and_tag_commits_only(reports, history):
    repo, pr_only = history
    window = (datetime(2025, 7, 1, tzinfo=UTC), datetime(2025, 10, 1, tzinfo=UTC))
    in_window = [
        line.split()
        for line in repo.git("log", "--branches", "--tags", "--format=%H %ct").splitlines()
    ]
    expected = sum(
        1 for sha, ct in in_window if window[0].timestamp() <= int(ct) < window[1].timestamp()
    )
    assert not pr_only & {sha for sha, _ in in_window}
    row = re.search(r'<section id="coverage">.*?<tbody>(.*?)</tbody>', reports["2025-Q3"], re.S)
    assert row
    numbers = re.findall(r'<td class="num">(\d+)</td>', row.group(1))
    assert int(numbers[0]) == expected


def test_year_report_makes_no_trend_claim_on_two_years_of_data(reports):
    page = reports["2025"]
    text = text_of(page)
    summary = text_of(page, "Summary").removeprefix("Summary ")
    assert summary.startswith("Service libpkg made 8 releases in 2025, low for deployment")
    assert "1 failed release of 8" in summary
    # 9 releases in 2024, 8 in 2025: both 0.2 a week, but a year reads in releases per year.
    assert "Release frequency 8 releases low ▼ −1 vs 2024 · within normal variation 8 per year" in (
        cards(page)
    )
    assert "8 releases per year (was 9 releases per year, within normal variation)" in text
    assert "Trends over 12 years (releases in 2 of them)" in text
    # A trend needs at least 3 windows with data; only 2024 and 2025 have any.
    assert "improving over" not in summary and "worsening over" not in summary
    assert ">2016<" in page and ">2025<" in page  # calendar years, the newest labelled


def test_week_report_of_a_quiet_week_points_at_the_waiting_work(reports):
    page = reports["2025-W36"]
    summary = text_of(page, "Summary").removeprefix("Summary ")
    assert summary.startswith("Service libpkg made no releases in 2025-W36")
    recs = text_of(page, "Recommend")
    assert "Send commits" not in recs  # commits are stored
    assert "Release the work that is waiting" in recs
    assert "commits in 2025-W36: 2" in recs
    assert "Releases per day" in text_of(page)
    # 2 of the 12 weeks had a release: no trend is claimed on that.
    assert "over the" not in summary and "worsening" not in summary
