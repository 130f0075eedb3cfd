"""Webhook payloads shaped like GitHub's and GitLab's (trimmed to the fields that matter,
plus some they always carry), for the webhook tests."""

from __future__ import annotations

from typing import Any

GITHUB_REPO = {
    "id": 1296269,
    "name": "checkout-service",
    "full_name": "acme/checkout-service",
    "private": True,
    "owner": {"login": "acme", "id": 1, "type": "Organization"},
    "html_url": "https://github.com/acme/checkout-service",
    "default_branch": "main",
}
SENDER = {"login": "octocat", "id": 583231, "type": "User"}
SHA = "7638417db6d59f3c431d3e1f261cc637155684cd"


def github_deployment_status(
    state: str = "success", deployment_id: int = 1234, environment: str = "production"
) -> dict[str, Any]:
    return {
        "action": "created",
        "deployment_status": {
            "url": f"https://api.github.com/repos/acme/checkout-service/deployments/{deployment_id}/statuses/1",
            "id": 987,
            "node_id": "DES_kwDOAAAB",
            "state": state,
            "creator": SENDER,
            "description": "Deployment finished successfully.",
            "environment": environment,
            "target_url": "",
            "created_at": "2026-01-05T12:00:00Z",
            "updated_at": "2026-01-05T12:00:00Z",
            "deployment_url": f"https://api.github.com/repos/acme/checkout-service/deployments/{deployment_id}",
        },
        "deployment": {
            "url": f"https://api.github.com/repos/acme/checkout-service/deployments/{deployment_id}",
            "id": deployment_id,
            "node_id": "DE_kwDOAAAB",
            "sha": SHA,
            "ref": "main",
            "task": "deploy",
            "payload": {},
            "original_environment": environment,
            "environment": environment,
            "description": None,
            "creator": SENDER,
            "created_at": "2026-01-05T11:50:00Z",
            "updated_at": "2026-01-05T12:00:00Z",
        },
        "repository": GITHUB_REPO,
        "sender": SENDER,
    }


def github_pull_request(number: int = 42, merged: bool = True) -> dict[str, Any]:
    return {
        "action": "closed",
        "number": number,
        "pull_request": {
            "url": f"https://api.github.com/repos/acme/checkout-service/pulls/{number}",
            "id": 1,
            "number": number,
            "state": "closed",
            "title": "Faster checkout",
            "user": SENDER,
            "created_at": "2026-01-04T09:00:00Z",
            "updated_at": "2026-01-05T10:00:00Z",
            "closed_at": "2026-01-05T10:00:00Z",
            "merged_at": "2026-01-05T10:00:00Z" if merged else None,
            "merge_commit_sha": SHA,
            "draft": False,
            "merged": merged,
            "head": {"ref": "faster", "sha": "aaaabbbbccccdddd"},
            "base": {"ref": "main", "sha": "1111222233334444"},
        },
        "repository": GITHUB_REPO,
        "sender": SENDER,
    }


def github_issue(number: int = 7, labels: tuple[str, ...] = ("incident", "sev2")) -> dict:
    return {
        "action": "closed",
        "issue": {
            "url": f"https://api.github.com/repos/acme/checkout-service/issues/{number}",
            "id": 99,
            "number": number,
            "title": "Payments failing",
            "user": SENDER,
            "labels": [{"id": i, "name": name, "color": "d73a4a"} for i, name in enumerate(labels)],
            "state": "closed",
            "created_at": "2026-01-05T13:00:00Z",
            "updated_at": "2026-01-05T15:00:00Z",
            "closed_at": "2026-01-05T15:00:00Z",
        },
        "repository": GITHUB_REPO,
        "sender": SENDER,
    }


GITLAB_PROJECT = {
    "id": 30,
    "name": "api",
    "description": "",
    "web_url": "https://gitlab.example.com/acme/payments/api",
    "git_ssh_url": "git@gitlab.example.com:acme/payments/api.git",
    "git_http_url": "https://gitlab.example.com/acme/payments/api.git",
    "namespace": "payments",
    "visibility_level": 0,
    "path_with_namespace": "acme/payments/api",
    "default_branch": "main",
}
GITLAB_USER = {"id": 1, "name": "Administrator", "username": "root"}


def gitlab_deployment(status: str = "success", deployment_id: int = 15) -> dict[str, Any]:
    return {
        "object_kind": "deployment",
        "status": status,
        "status_changed_at": "2026-01-05 13:50:00 +0100",
        "deployment_id": deployment_id,
        "deployable_id": 796,
        "deployable_url": "https://gitlab.example.com/acme/payments/api/-/jobs/796",
        "environment": "production",
        "environment_tier": "production",
        "environment_slug": "production",
        "environment_external_url": "https://api.example.com",
        "project": GITLAB_PROJECT,
        "short_sha": SHA[:8],
        "user": GITLAB_USER,
        "user_url": "https://gitlab.example.com/root",
        "commit_url": f"https://gitlab.example.com/acme/payments/api/-/commit/{SHA}",
        "commit_title": "Add new file",
    }


def gitlab_merge_request(iid: int = 5, action: str = "merge") -> dict[str, Any]:
    return {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": GITLAB_USER,
        "project": GITLAB_PROJECT,
        "object_attributes": {
            "id": 99,
            "iid": iid,
            "target_branch": "main",
            "source_branch": "feature",
            "title": "Retry card payments",
            "created_at": "2026-01-03 09:00:00 UTC",
            "updated_at": "2026-01-05 10:00:00 UTC",
            "state": "merged" if action == "merge" else "opened",
            "merge_commit_sha": SHA if action == "merge" else None,
            "merge_status": "can_be_merged",
            "action": action,
            "last_commit": {"id": SHA, "message": "Retry card payments"},
        },
        "labels": [],
    }


def gitlab_issue(iid: int = 3, labels: tuple[str, ...] = ("incident",)) -> dict[str, Any]:
    return {
        "object_kind": "issue",
        "event_type": "issue",
        "user": GITLAB_USER,
        "project": GITLAB_PROJECT,
        "object_attributes": {
            "id": 301,
            "iid": iid,
            "title": "Card payments down",
            "created_at": "2026-01-05T13:00:00Z",
            "updated_at": "2026-01-05T14:00:00Z",
            "closed_at": "2026-01-05T14:00:00Z",
            "state": "closed",
            "action": "close",
            "labels": [{"id": 1, "title": name} for name in labels],
        },
        "labels": [{"id": 1, "title": name} for name in labels],
    }
