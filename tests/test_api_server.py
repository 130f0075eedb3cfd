"""A real uvicorn server on 127.0.0.1 and PostgreSQL, driven by the curl lines of
docs/api.md: post a deployment from "CI", read the metrics back, re-run the job harmlessly."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn
from api_support import ORG_TOML
from sqlalchemy import func, select

from insights.api.app import create_app
from insights.api.auth import create_token
from insights.config import Settings
from insights.pipeline import apply_org_config
from insights.store.db import unit_of_work
from insights.store.models import Deployment, IdempotencyKey

DOCS = Path(__file__).resolve().parent.parent / "docs" / "api.md"
SHA = "0123456789abcdef0123456789abcdef01234567"


def ci_flow() -> str:
    """The shell block after the `ci-flow` marker in docs/api.md."""
    text = DOCS.read_text()
    match = re.search(r"<!-- ci-flow[^>]*-->\s*```sh\n(.*?)```", text, re.S)
    assert match, "docs/api.md lost its ci-flow block"
    return match.group(1)


def json_documents(text: str) -> list[dict]:
    decoder, docs, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        doc, at = decoder.raw_decode(text, at)
        docs.append(doc)
    return docs


@pytest.fixture
def server(pg_db, tmp_path):
    """`create_app` served by uvicorn in a thread on a free loopback port."""
    config = tmp_path / "insights.toml"
    config.write_text(ORG_TOML)
    settings = Settings(database_url=pg_db.url, config=config, reports_dir=tmp_path / "reports")
    with unit_of_work(pg_db.engine) as session:
        for tenant in settings.organisation().tenants:
            apply_org_config(session, tenant)
        token = create_token(session, "acme", "ci")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="info", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_ci_flow_from_the_docs_posts_a_deployment_and_reads_metrics_back(server, caplog):
    caplog.set_level(logging.DEBUG)
    url, token = server
    env = {
        **os.environ,
        "INSIGHTS_URL": url,
        "INSIGHTS_TOKEN": token,
        "GITHUB_SHA": SHA,
        "GITHUB_RUN_ID": "4242",
        "GITHUB_RUN_ATTEMPT": "1",
    }
    script = "set -euo pipefail\n" + ci_flow()
    first = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    posted, metrics = json_documents(first.stdout)
    assert posted["status"] == "new" and posted["service"] == "checkout"
    assert metrics["deployment_count"] == 1
    assert metrics["scope"] == {"kind": "service", "name": "checkout"}
    # the CI job is re-run: the Idempotency-Key replays the first answer, nothing is added
    again = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    replayed, metrics_again = json_documents(again.stdout)
    assert replayed == posted
    assert metrics_again["deployment_count"] == 1
    assert token not in caplog.text


def test_real_server_refuses_bad_tokens_and_oversized_bodies(server):
    url, token = server
    assert httpx.get(f"{url}/api/v1/metrics").status_code == 401
    # Only the head of the request is sent: the server answers from Content-Length before
    # reading the body. (Posting the whole 10 MB raced: the server closes a connection whose
    # body it never read, and the kernel's reset could drop the 413 before the client read it.)
    limit = 10 * 1024 * 1024
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            f"POST /api/v1/events HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/x-ndjson\r\n"
            f"Content-Length: {limit + 1}\r\n\r\n".encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert json.loads(body) == {"detail": f"request body larger than {limit} bytes"}
    assert "insights_http_requests_total" in httpx.get(f"{url}/metrics").text


def test_concurrent_retries_with_one_idempotency_key_apply_once(server, pg_db):
    url, token = server
    body = json.dumps({"service": "checkout", "sha": SHA, "finished_at": "2026-01-05T12:00:00Z"})
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Idempotency-Key": "deploy-race",
    }

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{url}/api/v1/deployments", content=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(post, range(6)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.text for r in responses}) == 1
    assert sum("Idempotent-Replayed" not in r.headers for r in responses) == 1
    with unit_of_work(pg_db.engine) as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1
        assert session.scalar(select(func.count()).select_from(Deployment)) == 1
