"""The local-git collector: commits, deployments and shipped commits from a clone, via `git`.

Everything is streamed from `git` subprocesses, one record at a time, and committed in batches
through `SyncContext.commit`, so a killed sync resumes where its last batch left off. Memory is
bounded by a few batches (one being written, two waiting, one being read), except that a first
sync keeps each commit's parent list for labelling the shipped commits (80–90 MiB more at 200k
commits, measured).

Rules (DESIGN.md):
- Commits: every commit reachable from the repository's branches and tags (`refs/heads`,
  `refs/remotes`, `refs/tags`) and from the deployed shas. Other refs are not the project's
  history: a mirror's `refs/pull/*` holds every pull request head, merged or not, which
  inflated commit counts, and notes and the stash are not code. Times are git's epoch seconds,
  stored as UTC (the author's offset only changes how git prints the time, not the instant).
  Message = subject, plus for a revert git's `This reverts commit <sha>.` line of the body
  (the revert rule).
- Deployments: each release tag (see `TagSelection`: version-like tags such as `v2.34.0` or
  `2.0.0` by default, never pre-releases like `-rc1`/`rc1`/`.dev1`/`a1`/`b1`/`-beta` unless
  `tag_prereleases`, never maintenance lines like `1.0.x`) is a successful `production`
  deployment of the tagged commit, finished at the tagger date for an annotated tag or the
  commit's committer date for a lightweight tag; its id is the tag name. With `deploy_log`,
  deployments come from that NDJSON file instead (canonical deployment events, one a line;
  `service` may be omitted). A selection that matches nothing is a warning listing some tags.
- Reconciliation: the stored deployments of the service always equal what the current
  configuration selects. A deployment whose tag was deleted or is no longer selected is
  removed (with its shipped-commit links and raw payload), and every later deployment's
  shipped commits are recomputed; a moved tag (new sha or date) is recomputed the same way.
- Shipped commits: deployments of one environment are ordered by (finished_at, id); a deployment
  ships the commits reachable from its sha and from no earlier deployment, i.e.
  `git rev-list cur --not <every earlier deployment>`, which is `prev..cur` on a linear history
  and counts each commit once, at its first production deployment, when maintenance branches
  interleave. A re-tag of a sha that was already deployed (or a rollback to an ancestor) ships
  nothing (an explicit empty list). The first deployment has no predecessor: its commits are not
  listed (`commits` stays unset), so it contributes no lead-time samples (DESIGN.md).
- Merge commits are shipped commits like any other, as in Four Keys (which counts every commit
  of a push): the merge carries when a change was integrated, its branch commits when the work
  was done; both are reachable, so both are listed.
- Incremental: the `commit` cursor keeps the ref tips already read, so a resync runs
  `git log <new tips> --not <old tips>` (nothing at all when no ref moved); the `deployment`
  cursor keeps a fingerprint per deployment, so only new or changed deployments (and those after
  them in time, whose predecessors changed) are recomputed.
"""

from __future__ import annotations

import fnmatch
import functools
import gc
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, ClassVar

from insights.boundedjson import JsonInputError, loads
from insights.collect.events import iter_lines
from insights.collect.hostcommon import refusal
from insights.collect.sync import SyncContext, SyncReport, register, sync_service
from insights.config import ServiceConfig, SourceConfig, TenantConfig
from insights.errors import UserError
from insights.model import (
    MESSAGE_MAX,
    TITLE_MAX,
    CommitRow,
    CommitRows,
    DeploymentEvent,
    EventError,
)
from insights.timeutil import EARLIEST, LATEST, RANGE_TEXT, TimeRangeError, iso

COMMIT_BATCH = 10_000  # commits per transaction; INSIGHTS_LOCALGIT_BATCH overrides
DEPLOYMENT_BATCH = 250
# %x00 separates fields and, with `git log -z`, ends each commit: the body (%b) spans lines but
# never holds a NUL (git cuts a message at its first NUL), so every commit is exactly
# LOG_FIELDS tokens of the NUL-split output.
LOG_FORMAT = "%H%x00%P%x00%an%x00%at%x00%ct%x00%s%x00%b"
LOG_FIELDS = 7
# git revert's body line; a merge revert wraps it: "…<sha>, reversing\nchanges made to <sha>."
_REVERT_LINE = re.compile(
    r"This reverts commit [0-9a-f]{40,64}(?:\.|,\s+reversing\s+changes made to [0-9a-f]{40,64}\.)"
)
_REVERT_MARK = b"This reverts commit "  # a cheap test of the raw body before the expression
# Branches (local and remote-tracking) and tags; see the module rules.
HISTORY_REFS = ("refs/heads/", "refs/remotes/", "refs/tags/")


# -- git plumbing -------------------------------------------------------------------------------


class Git:
    """Runs `git` in one repository; output is streamed, never read whole."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _argv(self, *args: str) -> list[str]:
        return ["git", "-C", str(self.path), "-c", "core.quotePath=off", *args]

    def run(self, *args: str, stdin: str | None = None) -> str:
        """Run a git command that prints little and return its output."""
        try:
            done = subprocess.run(
                self._argv(*args), input=stdin, capture_output=True, text=True, check=False
            )
        except FileNotFoundError:
            raise UserError("git: command not found (install git to use localgit)") from None
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["failed"])[0]
            raise UserError(f"{self.path}: git {args[0]}: {first}")
        return done.stdout

    def start(self, *args: str, stdin: Iterable[str] = ()) -> Running:
        """Start a git command fed `stdin` lines; read its output later with `lines()`.

        Git computes while nobody reads (until its pipe buffer fills), so a walk started early
        runs alongside our own work.
        """
        # a file, not a pipe, so git never blocks on it; closed by Running.stop()
        errors = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                self._argv(*args),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                bufsize=1 << 20,
            )
        except FileNotFoundError:
            errors.close()
            raise UserError("git: command not found (install git to use localgit)") from None
        assert proc.stdin is not None
        proc.stdin.write("".join(f"{line}\n" for line in stdin).encode())
        proc.stdin.close()
        return Running(args[0], proc, errors)

    def lines(self, running: Running) -> Iterator[bytes]:
        """Yield a started command's output lines (without the newline) as they come."""
        proc = running.proc
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                yield line[:-1] if line.endswith(b"\n") else line
            if proc.wait() != 0:
                raise UserError(f"{self.path}: git {running.command}: {running.first_error()}")
        finally:
            running.stop()

    def records(self, running: Running, fields: int) -> Iterator[list[bytes]]:
        """Yield a started `-z` command's output as records of `fields` NUL-separated tokens,
        as bytes (the caller decodes the tokens it keeps), as they come."""
        proc = running.proc
        assert proc.stdout is not None
        read = proc.stdout.read
        try:
            rest = b""  # an unfinished record, carried to the next chunk
            while chunk := read(1 << 20):
                tokens = (rest + chunk if rest else chunk).split(b"\0")
                whole = (len(tokens) - 1) // fields * fields  # the last token is unfinished
                for start in range(0, whole, fields):
                    yield tokens[start : start + fields]
                rest = b"\0".join(tokens[whole:])
            if proc.wait() != 0:
                raise UserError(f"{self.path}: git {running.command}: {running.first_error()}")
            if rest:
                raise UserError(f"{self.path}: git {running.command}: output ends mid-record")
        finally:
            running.stop()

    def committer_dates(self, shas: Iterable[str]) -> dict[str, str]:
        """Committer time (epoch seconds, as text) of each commit."""
        wanted = list(dict.fromkeys(shas))
        if not wanted:
            return {}
        out = self.run("show", "-s", "--format=%H %ct", *wanted)
        return dict(line.split() for line in out.splitlines() if line.strip())

    def ref_tips(self) -> list[str]:
        """The commits the branches and tags point at (tags peeled; other refs and non-commits
        left out)."""
        out = self.run(
            "for-each-ref",
            "--format=%(refname)%00%(objecttype)%00%(objectname)%00%(*objecttype)%00%(*objectname)",
            *(prefix.rstrip("/") for prefix in HISTORY_REFS),
        )
        tips = set()
        nested = []
        for line in out.splitlines():
            name, kind, oid, peeled_kind, peeled = line.split("\0")
            if not name.startswith(HISTORY_REFS):
                continue
            if kind == "commit":
                tips.add(oid)
            elif peeled_kind == "commit":
                tips.add(peeled)
            elif peeled_kind == "tag":
                nested.append(peeled)  # a tag of a tag: peel it all the way
        tips.update(self.resolve(nested, "^{commit}").values())
        return sorted(tips)

    def resolve(self, names: Iterable[str], suffix: str = "") -> dict[str, str]:
        """Full commit ids of the names (shas, short shas; `name + suffix` looked up, e.g.
        suffix `^{commit}` to peel tags) that the repository has as commits, by name."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        out = self.run(
            "cat-file",
            "--batch-check=%(objectname) %(objecttype) %(rest)",
            stdin="".join(f"{name}{suffix} {name}\n" for name in wanted),
        )
        resolved = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "commit":
                resolved[parts[2]] = parts[0]
        return resolved


@dataclass
class Running:
    """A git process started by `Git.start`, its stderr kept in a temporary file."""

    command: str
    proc: subprocess.Popen[bytes]
    errors: IO[bytes]

    def stop(self) -> None:
        """End the process if still running and release its pipe and file."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.errors.close()

    def first_error(self) -> str:
        self.errors.seek(0)
        text = self.errors.read().decode(errors="replace").strip()
        return (text.splitlines() or [f"exit status {self.proc.returncode}"])[0]


def open_repository(path: Path | None, service: str) -> Git:
    """A `Git` for the service's clone; a missing path or non-repository is a UserError."""
    if path is None:
        raise UserError(f"service {service!r}: source.path is required for kind localgit")
    path = path.expanduser()
    if not path.is_dir():
        raise UserError(f"{path}: no such directory (source.path of service {service!r})")
    git = Git(path.resolve())
    try:
        git.run("rev-parse", "--git-dir")
    except UserError:
        raise UserError(
            f"{path}: not a git repository (source.path of service {service!r})"
        ) from None
    return git


# -- deployments ---------------------------------------------------------------------------------


@dataclass
class Planned:
    """A deployment read from tags or the deploy log, before its shipped commits are known."""

    event: DeploymentEvent
    raw: dict[str, Any]
    listed: bool  # the source listed its commits itself (deploy log `commits`)
    known: bool = True  # the clone has the deployed commit

    @property
    def order(self) -> tuple[datetime, str]:
        return (self.event.finished_at or datetime.max.replace(tzinfo=UTC), self.event.id)

    @property
    def fingerprint(self) -> str:
        e = self.event
        parts = [e.sha, iso(e.finished_at) or "", e.status.value, e.environment]
        if e.commits is not None and self.listed:
            parts.append(hashlib.sha1(",".join(e.commits).encode()).hexdigest())
        return "|".join(parts)


# A version: optional `v`, dot-separated numbers (`v2.34.0`, `2.0.0`, `1.0`, `3`).
VERSION_TAG = re.compile(r"^[vV]?\d+(?:\.\d+)*$")
# A pre-release: a version ending in a PEP 440 / semver pre-release or dev segment
# (`2.0.0rc1`, `v2.34.0-rc0`, `1.0.dev1`, `1.0a1`, `1.0b1`, `1.0-beta`, `1.0.0-alpha.2`).
PRERELEASE_TAG = re.compile(
    r"\d[-._]?(?:a|alpha|b|beta|c|rc|pre|preview|dev)(?:[-._]?\d+)*$", re.IGNORECASE
)
# A maintenance line, not a release: `1.0.x`, `2.x`, `3.1-x`.
MAINTENANCE_TAG = re.compile(r"[-._]x$", re.IGNORECASE)
SHOWN_TAGS = 5


@dataclass(frozen=True)
class TagSelection:
    """Which tags are releases (each one a production deployment).

    A tag is selected when it matches an include glob (`tag_include`, plus the older
    `tag_pattern`; none given: the version rule `VERSION_TAG`, so `v2.34.0` and flask's `2.0.0`
    are found alike), matches no `tag_exclude` glob, and is neither a pre-release nor a
    maintenance line (unless `prereleases`, which admits pre-releases only).

    >>> TagSelection().selects("v2.34.0"), TagSelection().selects("v2.34.0-rc0")
    (True, False)
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    prereleases: bool = False

    @classmethod
    def of(cls, config: SourceConfig) -> TagSelection:
        include = [*config.tag_include, *([config.tag_pattern] if config.tag_pattern else [])]
        return cls(tuple(include), tuple(config.tag_exclude), config.tag_prereleases)

    def describe(self) -> str:
        included = ", ".join(self.include) if self.include else "version tags (v1.2.3, 1.2)"
        text = f"include {included}"
        if self.exclude:
            text += f"; exclude {', '.join(self.exclude)}"
        return text

    def _included(self, name: str) -> bool:
        if not self.include:
            return VERSION_TAG.match(name) is not None or (
                self.prereleases and VERSION_TAG.match(PRERELEASE_TAG.sub("0", name)) is not None
            )
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.include)

    def selects(self, name: str) -> bool:
        if not self._included(name):
            return False
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.exclude):
            return False
        if MAINTENANCE_TAG.search(name):
            return False
        return self.prereleases or PRERELEASE_TAG.search(name) is None

    def warnings(self, newest_first: list[str]) -> list[str]:
        """What to tell the user when a pattern selects nothing, with a few tags seen."""
        seen = ", ".join(newest_first[:SHOWN_TAGS]) + (
            ", …" if len(newest_first) > SHOWN_TAGS else ""
        )
        if not newest_first:
            return ["the repository has no tags, so no deployments (set source.deploy_log?)"]
        found = [
            f"tag pattern {pattern!r} matches none of the {len(newest_first)} tags (newest: {seen})"
            for pattern in self.include
            if not any(fnmatch.fnmatchcase(name, pattern) for name in newest_first)
        ]
        if not any(self.selects(name) for name in newest_first):
            found.append(
                f"no tag is selected as a release by {self.describe()}"
                f" ({len(newest_first)} tags, newest: {seen}); set source.tag_include"
            )
        return found


def tag_deployments(
    git: Git,
    service: str,
    selection: TagSelection,
    warn: Callable[[str], None] | None = None,
    refuse: Callable[[str, str], None] | None = None,
) -> list[Planned]:
    """One successful production deployment per selected tag (tags on commits only).

    A tag whose date the event model refuses (before 1970, after 2100) deploys nothing:
    `refuse(what, problem)` is told, and the sync goes on.
    """
    out = git.run(
        "for-each-ref",
        "--sort=-creatordate",
        "--format=%(refname:strip=2)%00%(objecttype)%00%(objectname)%00%(*objecttype)"
        "%00%(*objectname)%00%(taggerdate:unix)%00%(committerdate:unix)%00%(*committerdate:unix)",
        "refs/tags",
    )
    rows = [line.split("\0") for line in out.splitlines()]
    if warn is not None:
        for message in selection.warnings([row[0] for row in rows]):
            warn(message)
    rows = [row for row in rows if selection.selects(row[0])]
    nested = git.resolve((row[4] for row in rows if row[3] == "tag"), "^{commit}")
    nested_dates = git.committer_dates(nested.values())
    planned = []
    for name, kind, oid, peeled_kind, peeled, tagged, committed, peeled_committed in rows:
        if kind == "commit":
            sha, at, annotated = oid, committed, False
        elif kind == "tag" and peeled_kind == "commit":
            sha, at, annotated = peeled, tagged or peeled_committed, True
        elif kind == "tag" and peeled in nested:  # a tag of a tag of a commit
            sha, annotated = nested[peeled], True
            at = tagged or nested_dates[sha]
        else:
            continue  # a tag of a tree or blob deploys nothing
        try:  # through the event model: a tag dated 2300 (or 1600) is refused, not stored
            event = DeploymentEvent(
                service=service,
                id=name,
                environment="production",
                sha=sha,
                status="success",
                finished_at=_epoch(at),
            )
        except ValueError as exc:
            if refuse is not None:
                refuse(f"tag {name!r}", refusal(exc))
            continue
        raw = {"tag": name, "annotated": annotated, "object": oid, "sha": sha, "time": int(at)}
        planned.append(Planned(event, raw, listed=False))
    return planned


def log_deployments(path: Path, service: str) -> list[Planned]:
    """Deployments from an NDJSON deploy log; any bad line is a UserError naming file and line."""
    if not path.expanduser().is_file():
        raise UserError(f"{path}: deploy log not found (source.deploy_log of service {service!r})")
    planned: dict[str, Planned] = {}
    with path.expanduser().open("rb") as handle:
        decoded = _with_service(handle, service, path)
        for number, item in iter_lines(decoded):
            if isinstance(item, EventError):
                raise UserError(f"{path}: {item}")
            if not isinstance(item, DeploymentEvent):
                raise UserError(f"{path}: line {number}: type must be deployment, not {item.type}")
            raw = item.model_dump(mode="json")
            planned[item.id] = Planned(item, raw, listed=item.commits is not None, known=False)
    return list(planned.values())


def _with_service(lines: Iterable[bytes], service: str, path: Path) -> Iterator[str]:
    """Fill in `service` on deploy-log lines that omit it; another service's line is an error."""
    for number, raw in enumerate(lines, start=1):
        text = raw.decode("utf-8", errors="replace").strip()
        try:
            data = loads(text) if text else None  # bounded, like every other event input
        except JsonInputError:
            yield text  # iter_lines reports it with its line number
            continue
        if isinstance(data, dict):
            named = data.setdefault("service", service)
            if named != service:
                raise UserError(f"{path}: line {number}: service {named!r} is not {service!r}")
            text = json.dumps(data)
        yield text


@dataclass
class Labeler:
    """Assigns each commit to the first deployment (in order) whose sha reaches it.

    Fed (sha, parents) in topological order (children before parents), it keeps a label only for
    the frontier of commits seen as parents but not yet reached, so memory stays bounded by the
    width of the history, not its length. `shipped[i]` are the commits of deployment i that no
    earlier deployment reaches: `git rev-list tip_i --not tip_0 … tip_(i-1)`.
    """

    tips: list[str]
    shipped: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    _labels: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for index, sha in enumerate(self.tips):
            self._labels.setdefault(sha, index)

    def feed(self, sha: str, parents: list[str]) -> None:
        label = self._labels.pop(sha, None)
        if label is None:
            return
        self.shipped[label].append(sha)
        labels = self._labels
        for parent in parents:
            if labels.get(parent, label + 1) > label:
                labels[parent] = label


def _label_from_graph(
    graph: dict[bytes, list[bytes]], sets: list[tuple[list[int], list[str], list[str]]]
) -> dict[int, list[str]]:
    """Shipped commits by chain index, from every commit's parents (`graph`, git's bytes),
    per label set (`Planned` indexes, their shas in order, earlier shas): what `git rev-list
    tip_i --not <earlier shas> tip_0 … tip_(i-1)` lists, walked in Python. The set of commits
    already claimed stays closed under parents, so each walk stops at the history shipped
    before.
    """
    shipped: dict[int, list[str]] = {}
    for later, tips, earlier in sets:
        claimed: set[bytes] = set()
        for sha in earlier:
            _claim(graph, claimed, sha.encode())
        for index, sha in zip(later, tips, strict=True):
            shipped[index] = [found.decode() for found in _claim(graph, claimed, sha.encode())]
    return shipped


def _claim(graph: dict[bytes, list[bytes]], claimed: set[bytes], start: bytes) -> list[bytes]:
    """The commits of `graph` reachable from `start` and not yet `claimed`; claims them."""
    found = []
    stack = [start]
    while stack:
        sha = stack.pop()
        if sha in claimed or sha not in graph:
            continue
        claimed.add(sha)
        found.append(sha)
        stack.extend(graph[sha])
    return found


@dataclass(frozen=True)
class CommitPass:
    """One `git log` pass of the commit sync (see `LocalGitCollector._commit_pass`)."""

    revs: list[str]  # git log --stdin: the new tips, then ^ each tip read before
    tips: list[str]  # every tip once the pass is done (the next cursor)
    read_before: list[str]  # the cursor's tips while the pass runs
    digest: str  # of `revs`: a resumed pass must be the same pass
    skip: int  # commits of this pass stored by a killed run
    whole: bool  # nothing read before: the pass prints the whole history

    @property
    def complete(self) -> bool:
        return self.whole and self.skip == 0


# -- the collector -------------------------------------------------------------------------------


@register("localgit")
class LocalGitCollector:
    """Commits and deployments of one local clone (see the module docstring for the rules)."""

    source: ClassVar[str] = "localgit"

    def __init__(self, service: ServiceConfig, tenant: TenantConfig) -> None:
        self.service = service
        self.config = service.source
        self.git = open_repository(self.config.path, service.name)

    def repo_key(self) -> str:
        return str(self.git.path)

    def sync(self, ctx: SyncContext) -> None:
        if self.config.deploy_log is None:
            # a tag is a ref: the commit a release tag deploys is among the ref tips already
            planned = None
            commit_pass = self._commit_pass(ctx, set())
        else:
            planned = self._planned(ctx)
            commit_pass = self._commit_pass(ctx, {p.event.sha for p in planned if p.known})
        # git walks the history while the deployments are read and worked out
        log = None if commit_pass is None else self._start_log(commit_pass)
        running = [] if log is None else [log]
        try:
            if planned is None:
                planned = self._planned(ctx)
            wanted = {p.event.id for p in planned}
            stored = ctx.stored_deployments().items()
            stale = {key: value for key, value in stored if key not in wanted}
            chain, first = self._to_compute(ctx, planned, stale)
            # A pass over the whole history prints every commit the deployments can reach,
            # with its parents: the shipped commits are labelled from those (no second walk
            # of the history by git). Otherwise (an incremental or resumed pass) git walks the
            # deployments' history itself, alongside the commits being stored.
            graph: dict[bytes, list[bytes]] | None = (
                {} if commit_pass is not None and commit_pass.complete else None
            )
            labeling = self._start_labeling(chain, first) if graph is None else []
            running += [walk for _, walk in labeling]
            with (
                _ingest_interpreter(),
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="localgit-writer") as writer,
            ):
                last: Future[None] | None = None
                if commit_pass is not None and log is not None:
                    last = self._sync_commits(ctx, commit_pass, log, graph, writer)
                # labelled while the writer stores the last commit batch
                if graph is None:
                    shipped = self._finish_labeling(chain, labeling)
                else:
                    shipped = _label_from_graph(graph, self._label_sets(chain, first))
                    graph.clear()
                if last is not None:
                    last.result()  # the commits are stored before the deployments
                self._sync_deployments(ctx, planned, chain, first, shipped, sorted(stale))
        finally:
            for process in running:
                process.stop()

    def _start_log(self, run: CommitPass) -> Running:
        """Start the pass's `git log`; its output is read by `_sync_commits`."""
        return self.git.start("log", "-z", f"--format={LOG_FORMAT}", "--stdin", stdin=run.revs)

    def _planned(self, ctx: SyncContext | None = None) -> list[Planned]:
        """Deployments from the deploy log or the selected tags, shas resolved to full ids.

        A deployment of a sha this clone does not have keeps it as given; its shipped commits
        stay unknown (unset).
        """
        if self.config.deploy_log is None:
            return tag_deployments(
                self.git,
                self.service.name,
                TagSelection.of(self.config),
                ctx.warn if ctx is not None else None,
                functools.partial(ctx.skip, "deployment") if ctx is not None else None,
            )
        planned = log_deployments(self.config.deploy_log, self.service.name)
        full = self.git.resolve(p.event.sha for p in planned)
        for p in planned:
            if p.event.sha in full:
                p.event = p.event.model_copy(update={"sha": full[p.event.sha]})
                p.known = True
        return planned

    def _to_compute(
        self,
        ctx: SyncContext,
        planned: list[Planned],
        stale: dict[str, tuple[str, datetime | None]],
    ) -> tuple[list[Planned], int]:
        """The chain (successful production deployments, by environment then time) and the
        index of the first one that is new or changed since the cursor (len(chain): none),
        or that follows a deployment being removed (`stale`: environment, finished_at by id).

        Every deployment after that one is recomputed too: its predecessors may have changed.
        """
        done = (ctx.cursor("deployment") or {}).get("deployed", {})
        chain = sorted(
            (
                p
                for p in planned
                if p.event.status.value == "success"
                and self.service.is_production(p.event.environment)
            ),
            key=lambda p: (p.event.environment, *p.order),
        )
        first = next(
            (i for i, p in enumerate(chain) if done.get(p.event.id) != p.fingerprint), len(chain)
        )
        for environment, finished in stale.values():
            removed_order = (finished or datetime.max.replace(tzinfo=UTC), "")
            after = next(
                (
                    i
                    for i, p in enumerate(chain)
                    if p.event.environment == environment and p.order >= removed_order
                ),
                len(chain),
            )
            first = min(first, after)
        return chain, first

    def _label_sets(
        self, chain: list[Planned], first: int
    ) -> list[tuple[list[int], list[str], list[str]]]:
        """Per environment with something to compute: the chain indexes of chain[first:]
        (deployments of known commits), their shas in order, and the shas of the earlier
        deployments, whose history ships nothing again."""
        by_env: dict[str, list[int]] = defaultdict(list)
        for index, p in enumerate(chain):
            by_env[p.event.environment].append(index)
        sets = []
        for indexes in by_env.values():
            later = [i for i in indexes if i >= first and chain[i].known]
            if not later:
                continue
            earlier = [chain[i].event.sha for i in indexes if i < first and chain[i].known]
            sets.append((later, [chain[i].event.sha for i in later], earlier))
        return sets

    def _start_labeling(self, chain: list[Planned], first: int) -> list[tuple[list[int], Running]]:
        """Start one `git rev-list --topo-order --parents` walk per environment over the
        commits that chain[first:] may ship; it runs while the commits are being stored."""
        walks = []
        for later, tips, earlier in self._label_sets(chain, first):
            revs = [*dict.fromkeys(tips), *(f"^{sha}" for sha in dict.fromkeys(earlier))]
            walks.append(
                (
                    later,
                    self.git.start("rev-list", "--topo-order", "--parents", "--stdin", stdin=revs),
                )
            )
        return walks

    def _finish_labeling(
        self, chain: list[Planned], walks: list[tuple[list[int], Running]]
    ) -> dict[int, list[str]]:
        """Shipped commits by chain index, from the walks `_start_labeling` started."""
        shipped: dict[int, list[str]] = {}
        for later, running in walks:
            labeler = Labeler([chain[i].event.sha for i in later])
            for line in self.git.lines(running):
                sha, *parents = line.decode().split()
                labeler.feed(sha, parents)
            for position, index in enumerate(later):
                shipped[index] = labeler.shipped.get(position, [])
        return shipped

    def _commit_pass(self, ctx: SyncContext, deployed: set[str]) -> CommitPass | None:
        """What `git log` must read: the ref tips (and the `deployed` shas) not read before,
        minus the history of those read before; None when no ref moved.

        The cursor keeps the tips already read. While a pass runs, each batch also records how
        many commits of this pass are stored, so a killed pass resumes after them (git prints
        the same revisions in the same order).
        """
        cursor = ctx.cursor("commit") or {}
        tips = sorted(set(self.git.ref_tips()) | deployed)
        seen = set(cursor.get("tips", []))
        new = [t for t in tips if t not in seen]
        if not new:
            if cursor.get("tips") != tips:
                ctx.commit("commit", [], {"tips": tips})
            return None
        old = sorted(self.git.resolve(seen).values()) if seen else []
        revs = [*new, *(f"^{sha}" for sha in old)]
        digest = hashlib.sha1("\n".join(revs).encode()).hexdigest()
        progress = cursor.get("pass") or {}
        skip = progress.get("done", 0) if progress.get("digest") == digest else 0
        return CommitPass(revs, tips, list(cursor.get("tips", [])), digest, skip, not old)

    def _sync_commits(
        self,
        ctx: SyncContext,
        run: CommitPass,
        log: Running,
        graph: dict[bytes, list[bytes]] | None,
        writer: ThreadPoolExecutor,
    ) -> Future[None]:
        """Stream the pass's commits (the output of `log`) into the database in batches; with
        `graph`, also keep each commit's parents there (for labelling the shipped commits).
        Returns the storing of the last batch, still running on `writer`.

        The writer thread stores batch n while this thread parses the next ones (the database
        driver releases the GIL while the server works); up to two batches wait for it, so a
        slow moment of the server does not stop git at once. Batches still commit one at a
        time and in order, each with its cursor, and none after one that failed
        (`_store_after`), so resuming works exactly as without the writer.
        """
        tips, skip, digest = run.tips, run.skip, run.digest
        name = self.service.name
        size = int(os.environ.get("INSIGHTS_LOCALGIT_BATCH") or COMMIT_BATCH)
        batch: list[CommitRow] = []
        done = 0
        queued: list[Future[None]] = []
        for raw in self.git.records(log, LOG_FIELDS):
            done += 1
            if done <= skip:
                continue
            sha, parents, author, authored, committed, subject, body = raw
            if graph is not None:
                graph[sha] = parents.split()
            commit = _commit_row(sha, parents, author, authored, committed, subject, body)
            if commit is None:
                what = f"commit {sha[:12].decode()}"
                ctx.skip("commit", what, f"date outside {RANGE_TEXT}")
                continue
            batch.append(commit)
            if len(batch) >= size:
                if len(queued) == 2:
                    queued.pop(0).result()  # re-raises a failed batch's error here
                cursor = {"tips": run.read_before, "pass": {"digest": digest, "done": done}}
                after = queued[-1] if queued else None
                rows = CommitRows(name, batch)
                queued.append(writer.submit(_store_after, after, ctx, rows, cursor))
                batch = []
        after = queued[-1] if queued else None
        return writer.submit(_store_after, after, ctx, CommitRows(name, batch), {"tips": tips})

    def _sync_deployments(
        self,
        ctx: SyncContext,
        planned: list[Planned],
        chain: list[Planned],
        first: int,
        shipped: dict[int, list[str]],
        stale: list[str],
    ) -> None:
        """Commit deployments that are new or changed, with their shipped commits, in order;
        the first batch also removes the `stale` deployments (no longer selected)."""
        done: dict[str, str] = dict((ctx.cursor("deployment") or {}).get("deployed", {}))
        for external_id in stale:
            done.pop(external_id, None)
        in_chain = {id(p) for p in chain}
        ready = [
            p for p in planned if id(p) not in in_chain and done.get(p.event.id) != p.fingerprint
        ]
        first_of_env: dict[str, int] = {}
        for index, p in enumerate(chain):
            first_of_env.setdefault(p.event.environment, index)
            if index < first:
                continue
            if p.listed:
                ready.append(p)
                continue
            is_first = first_of_env[p.event.environment] == index
            commits = None if is_first or not p.known else tuple(shipped.get(index, ()))
            ready.append(Planned(p.event.model_copy(update={"commits": commits}), p.raw, p.listed))
        wanted = {p.event.id for p in planned}
        done = {key: value for key, value in done.items() if key in wanted}
        for start in range(0, max(len(ready), 1 if stale else 0), DEPLOYMENT_BATCH):
            part = ready[start : start + DEPLOYMENT_BATCH]
            for p in part:
                done[p.event.id] = p.fingerprint
            ctx.commit(
                "deployment",
                [p.event for p in part],
                {"deployed": done},
                raw=[(p.event.id, p.raw) for p in part],
                removed_deployments=stale if start == 0 else (),
            )


def _store_after(
    previous: Future[None] | None, ctx: SyncContext, rows: CommitRows, cursor: dict[str, Any]
) -> None:
    """Commit a batch of commits with its cursor once the batch before it is stored; after a
    failed one, raise its error instead (a later cursor would claim the lost batch stored)."""
    if previous is not None:
        previous.result()
    ctx.commit("commit", rows, cursor)


_INGEST_SWITCH_INTERVAL = 0.001  # seconds (Python's default: 0.005)
_ingests = 0
_ingests_lock = threading.Lock()
_saved: tuple[bool, float] = (True, 0.005)


@contextmanager
def _ingest_interpreter() -> Iterator[None]:
    """While any local-git sync of this process runs: no cyclic garbage collection, and a
    shorter thread switch interval; the first sync to start changes both, the last to end
    restores them.

    - Reading 10⁵ commits allocates millions of small objects, and each few thousand of them
      trigger a collection; every tenth of those walks the whole heap (pandas, SQLAlchemy, …),
      ≈ 20% of a git/git ingest. The records have no reference cycles: reference counting
      frees each batch once stored, so memory stays bounded without the collector.
    - The writer thread makes a dozen statements per batch, and after each round trip it
      waits for the parsing thread to hand over the interpreter lock: up to the switch
      interval each time, ≈ 0.4 s of a git/git ingest at 5 ms (docs/sync.md).
    """
    global _ingests, _saved
    with _ingests_lock:
        if _ingests == 0:
            _saved = (gc.isenabled(), sys.getswitchinterval())
            gc.disable()
            sys.setswitchinterval(min(_saved[1], _INGEST_SWITCH_INTERVAL))
        _ingests += 1
    try:
        yield
    finally:
        with _ingests_lock:
            _ingests -= 1
            if _ingests == 0:
                if _saved[0]:
                    gc.enable()
                sys.setswitchinterval(_saved[1])


_EARLIEST_S = int(EARLIEST.timestamp())
_LATEST_S = int(LATEST.timestamp())


def _epoch(seconds: str) -> datetime:
    """A git epoch time as UTC; one beyond what datetime holds is a `TimeRangeError` (the
    event model then names it) rather than an OverflowError."""
    try:
        return datetime.fromtimestamp(int(seconds), UTC)
    except (OverflowError, OSError, ValueError):
        raise TimeRangeError(f"outside the accepted range {RANGE_TEXT}") from None


def _commit_row(
    sha: bytes,
    parents: bytes,
    author: bytes,
    authored: bytes,
    committed: bytes,
    subject: bytes,
    body: bytes,
) -> CommitRow | None:
    """A commit row (`CommitRows`) from the tokens of one `git log` record (times are epoch
    seconds), or None when a time lies outside the event model's range (`git commit
    --date=@10000000000`).

    Git's output is already canonical (lower-case hex shas, epoch times), so the row only needs
    what the event validators would do to it: the range check as two integer comparisons, and
    text that is not short ASCII decoded (invalid UTF-8 replaced, as `bytes.decode(errors=
    "replace")` does), cut to the model's limit and encoded again. The body is only searched
    for git's `This reverts commit <sha>.` line, which joins the subject (the revert rule).
    A test pins equality with the validated event.
    """
    committed_s, authored_s = int(committed), int(authored)
    if not (_EARLIEST_S <= committed_s <= _LATEST_S and _EARLIEST_S <= authored_s <= _LATEST_S):
        return None
    if not (author.isascii() and len(author) <= TITLE_MAX):
        author = _cut(author.decode("utf-8", "replace"), TITLE_MAX)
    if _REVERT_MARK in body:  # the subject alone does not say which commit it reverts
        match = _REVERT_LINE.search(body.decode("utf-8", "replace"))
        if match:
            text = subject.decode("utf-8", "replace")
            subject = _cut(f"{text}\n\n{' '.join(match.group(0).split())}", MESSAGE_MAX)
    if not (subject.isascii() and len(subject) <= MESSAGE_MAX):
        subject = _cut(subject.decode("utf-8", "replace"), MESSAGE_MAX)
    return (sha, parents, author or None, authored_s, committed_s, subject or None)


def _cut(text: str, limit: int) -> bytes:
    """`text` cut to `limit` characters as the event model cuts it, encoded."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.encode()


def sync_local_repo(
    engine: Any,
    path: Path,
    *,
    tenant: str = "default",
    service: str | None = None,
    tag_pattern: str | None = None,
    deploy_log: Path | None = None,
    tag_include: Sequence[str] = (),
    tag_exclude: Sequence[str] = (),
) -> SyncReport:
    """Sync one local clone without an insights.toml (used by `insights demo --repo PATH`).

    The service is named after the repository folder unless `service` is given.
    Example: sync_local_repo(engine_for(url), Path("~/src/app"))
    """
    name = service or _service_name(path)
    config = ServiceConfig(
        name=name,
        source=SourceConfig(
            kind="localgit",
            path=path,
            tag_pattern=tag_pattern,
            tag_include=list(tag_include),
            tag_exclude=list(tag_exclude),
            deploy_log=deploy_log,
        ),
    )
    return sync_service(engine, TenantConfig(name=tenant, services=[config]), config)


def _service_name(path: Path) -> str:
    stem = path.expanduser().resolve().name.removesuffix(".git") or "repo"
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem).lstrip("._-")
    return cleaned[:128] or "repo"
