"""The README runs as written: every command line of its Quick tour, Getting data in and HTTP
API (CI) sections, in order, as a new user runs them — each line through `bash -c` with the
installed `insights` on PATH, a fresh HOME (so the default SQLite database is new), an
`insights.toml` and `events.ndjson` in the working directory.

The lines are read from README.md's code blocks, so this test follows the README as it
changes. Every line must exit 0. `insights serve` lines run in the background until the
API answers (on a free local port and 127.0.0.1 instead of 8000 / 0.0.0.0); the curl lines
then talk to that real uvicorn, with `$INSIGHTS_TOKEN` from the `tenant token create` line.
Nothing reaches the internet.

The config gives tenant `acme` its team `payments` (the Quick tour's team steps need a team;
issue 18 makes the database follow insights.toml by itself, until then the import's new
service picks its team from the file).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from git_support import GitRepo

README = Path(__file__).resolve().parent.parent / "README.md"
SECTIONS = ("Quick tour", "Getting data in", "HTTP API")
BIN = Path(sys.executable).parent

CONFIG = """
[[tenants]]
name = "acme"
  [[tenants.teams]]
  name = "payments"
  [[tenants.services]]
  name = "checkout"
  team = "payments"
"""


def readme_commands(text: str, sections: tuple[str, ...] = SECTIONS) -> list[tuple[str, str]]:
    """(section, command line) of every `sh` code block in `sections`, in README order;
    backslash continuations are joined, comment-only and blank lines dropped."""
    out: list[tuple[str, str]] = []
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        title = block.splitlines()[0].strip()
        if title not in sections:
            continue
        for code in re.findall(r"^```sh\n(.*?)^```", block, flags=re.M | re.S):
            joined = re.sub(r"\s*\\\n\s*", " ", code)
            for line in joined.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    out.append((title, line.strip()))
    return out


def test_readme_commands_are_found_in_every_section():
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert {section for section, _ in commands} == set(SECTIONS)
    assert len(commands) >= 20
    sample = "## Quick tour\n```sh\ninsights a \\\n  --b  # c\n# only a comment\n```\n## Other\n"
    assert readme_commands(sample, ("Quick tour",)) == [("Quick tour", "insights a --b  # c")]


def _events(now: datetime) -> list[dict]:
    """Deliveries of `checkout` in 2026-W05 (the Quick tour's window) and in the last full
    week (the default window of gate/report/narrate): small, healthy, and gate-passing."""
    monday = (now - timedelta(days=now.weekday() + 7)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    starts = [datetime(2026, 1, 26, tzinfo=UTC), monday]
    rows: list[dict] = []
    for week, start in enumerate(starts):
        for day in range(3):
            at = start + timedelta(days=day, hours=9)
            sha = f"{week + 1:02x}{day + 1:02x}abcd"
            rows.append(
                {
                    "type": "commit",
                    "service": "checkout",
                    "sha": sha,
                    "committed_at": at.isoformat(),
                    "message": f"change {week}-{day}",
                }
            )
            rows.append(
                {
                    "type": "change",
                    "service": "checkout",
                    "id": f"{week}{day}",
                    "title": "Faster checkout @octocat",
                    "opened_at": (at + timedelta(hours=1)).isoformat(),
                    "first_commit_at": at.isoformat(),
                    "first_review_at": (at + timedelta(hours=2)).isoformat(),
                    "merged_at": (at + timedelta(hours=3)).isoformat(),
                    "merge_sha": sha,
                    "commits": [sha],
                }
            )
            rows.append(
                {
                    "type": "deployment",
                    "service": "checkout",
                    "id": f"d-{week}{day}",
                    "environment": "production",
                    "sha": sha,
                    "status": "success",
                    "started_at": (at + timedelta(hours=4)).isoformat(),
                    "finished_at": (at + timedelta(hours=5)).isoformat(),
                    "commits": [sha],
                }
            )
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, server: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"insights serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers (503 while the scheduler elects a leader is an answer)
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url}: no answer within {seconds} s")


class Session:
    """A user's shell session: the environment persists across lines (`export`)."""

    def __init__(self, home: Path, work: Path) -> None:
        self.work = work
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("INSIGHTS_", "GITHUB_", "CI_"))
        }
        self.env.update(
            {
                "HOME": str(home),
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                # what a GitHub Actions step has
                "GITHUB_SHA": "0fedcba987654321",
                "GITHUB_RUN_ID": "4242",
                "GITHUB_RUN_ATTEMPT": "1",
            }
        )
        self.servers: list[subprocess.Popen] = []
        self.ran: list[str] = []

    def run(self, line: str) -> subprocess.CompletedProcess:
        self.ran.append(line)
        if line.startswith("export "):
            name, _, value = shlex.split(line, comments=True)[1].partition("=")
            self.env[name] = value
            return subprocess.CompletedProcess(line, 0, "", "")
        if re.match(r"insights serve\b", line):
            return self._serve(line)
        done = subprocess.run(
            ["bash", "-c", line],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, (
            f"README line failed with exit {done.returncode}: {line}\n"
            f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
        )
        if "tenant token create" in line:
            self.env["INSIGHTS_TOKEN"] = done.stdout.strip().splitlines()[-1]
        return done

    def _serve(self, line: str) -> subprocess.CompletedProcess:
        """Start the line's server in the background on a free port of 127.0.0.1."""
        self.stop_servers()
        port = _free_port()
        command = re.sub(r"--host \S+", "--host 127.0.0.1", line.split("#")[0]).strip()
        if "--port" in command:
            command = re.sub(r"--port \d+", f"--port {port}", command)
        else:
            command += f" --port {port}"
        server = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=self.work,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.servers.append(server)
        self.env["INSIGHTS_URL"] = f"http://127.0.0.1:{port}"
        _wait_until_up(f"http://127.0.0.1:{port}/healthz", server)
        return subprocess.CompletedProcess(line, 0, "", "")

    def stop_servers(self) -> None:
        for server in self.servers:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
        self.servers.clear()


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory: pytest.TempPathFactory):
    """Every README line run once, in order; read-only tests below inspect the outcome."""
    root = tmp_path_factory.mktemp("readme")
    home, work = root / "home", root / "work"
    work.mkdir(parents=True)
    app = GitRepo(home / "src" / "app")
    app.commit("first", "2026-01-05T10:00:00Z")
    app.tag("release-1", date="2026-01-06T10:00:00Z")
    app.commit("second", "2026-01-07T10:00:00Z")
    app.tag("release-2", date="2026-01-08T10:00:00Z")
    (work / "insights.toml").write_text(CONFIG, encoding="utf-8")
    events = _events(datetime.now(UTC))
    (work / "events.ndjson").write_text(
        "\n".join(json.dumps(e) for e in events) + "\n", encoding="utf-8"
    )
    session = Session(home, work)
    outputs: dict[str, subprocess.CompletedProcess] = {}
    try:
        for _section, line in readme_commands(README.read_text(encoding="utf-8")):
            outputs[line] = session.run(line)
    finally:
        session.stop_servers()
    return session, outputs


def _output(outputs: dict, prefix: str) -> str:
    line = next(k for k in outputs if k.startswith(prefix))
    return outputs[line].stdout


def test_every_readme_command_line_runs_in_order_and_exits_0(readme_run):
    session, outputs = readme_run
    assert session.ran == [line for _, line in readme_commands(README.read_text())]
    assert len(outputs) >= 20


def test_the_readme_flow_lands_its_data_in_the_users_fresh_database(readme_run):
    session, outputs = readme_run
    database = Path(session.env["HOME"]) / ".local" / "share" / "insights" / "insights.db"
    assert database.is_file()
    metrics = _output(outputs, "insights metrics --tenant acme --scope service:checkout")
    assert "DORA metrics — service checkout — 2026-W05" in metrics
    assert "gate passed: tenant:acme" in _output(outputs, "insights gate --tenant acme")
    assert (session.work / "reports" / "acme" / "index.html").is_file()
    assert (session.work / "reports" / "demo" / "index.html").is_file()
    narrative = _output(outputs, "insights narrate --tenant acme --scope team:payments")
    assert narrative.startswith("team payments, ")
    digest = json.loads(_output(outputs, "insights digest --tenant acme --team payments"))
    assert digest["blocks"][0]["text"]["text"].startswith("DORA digest · Team payments · ")
    assert "recorded incident INC-3" in _output(outputs, "insights record incident -s checkout")
    deploy = _output(outputs, "insights record deployment")
    assert "recorded deployment production:0fedcba98765:run-4242" in deploy


def test_the_readme_ci_curl_lines_reach_the_real_api(readme_run):
    _, outputs = readme_run
    posted = json.loads(_output(outputs, "curl -fsS -X POST"))
    assert (posted["tenant"], posted["type"], posted["service"]) == (
        "acme",
        "deployment",
        "checkout",
    )
    assert posted["status"] == "new"
    metrics = json.loads(_output(outputs, 'curl -fsS "$INSIGHTS_URL/api/v1/metrics'))
    assert metrics["scope"] == {"kind": "service", "name": "checkout"}
    assert metrics["tenant"] == "acme"
