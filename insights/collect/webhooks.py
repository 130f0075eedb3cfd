"""GitHub and GitLab webhook deliveries → canonical events (pure functions, no I/O).

The delivery's envelope is read here (which event, which action, which object, which
repository); the objects inside it are mapped by the same functions the collectors use
(`insights.collect.github_map`, `insights.collect.gitlab_map`), so labels, severities,
`deployment:<id>` links, reviews and deploy workflows mean the same on both paths.

Every delivery gets an answer that GitHub/GitLab count as delivered (2xx). What is not stored
says why (`Mapped.ignored`, with a short `reason` code for the Prometheus counter):
`untracked_event` (a kind we do not read: installation, push, star…), `no_repository` (the
payload has no repository/project object: organisation, team, marketplace, sponsorship…),
`unknown_repository` (no service of the tenant has it), `not_tracked` (a tracked kind carrying
nothing to store: an inactive deployment status, a run of another workflow, a review by the
author, an issue that is not and was not an incident).

GitHub (`X-GitHub-Event`): `deployment_status` → deployment (id = deployment id);
`workflow_run` completed/success of the service's `workflow` on the default branch →
deployment `run-<id>`; `pull_request` → change (id = number; merge sha once merged);
`pull_request_review` → the change's first review / approval (the earlier of stored and new);
`issues` → incident when labelled; `deleted`, `transferred`, or an issue without the label
(`unlabeled`) removes the stored incident.
GitLab (`object_kind`): `deployment` → deployment (sha from `commit_url`), `pipeline` →
deployment `pipeline-<id>` when it is the service's `workflow` (pipeline or deploy job name),
`merge_request` → change (merged at the `merge` action's `updated_at`), `issue`/`work_item` →
incident when labelled or typed incident, removed when it is no longer one or was moved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from insights.collect import github_map, gitlab_map
from insights.collect.events import AnyEvent
from insights.config import ServiceConfig
from insights.model import DeploymentStatus, describe_validation_error

_HEX = re.compile(r"^[0-9a-fA-F]{4,64}$")

GITHUB_TRACKED = (
    "deployment_status",
    "workflow_run",
    "pull_request",
    "pull_request_review",
    "issues",
)
GITLAB_TRACKED = ("deployment", "pipeline", "merge_request", "issue", "work_item")
INCIDENT_FIELDS = frozenset({"resolved_at", "severity", "deployment_id", "title"})
# Reason codes of ignored deliveries (the `reason` label of the Prometheus counter).
UNTRACKED_EVENT = "untracked_event"
NO_REPOSITORY = "no_repository"
UNKNOWN_REPOSITORY = "unknown_repository"
NOT_TRACKED = "not_tracked"


class PayloadError(ValueError):
    """A payload lacks a field the mapping needs; `str()` names the JSON path."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class Mapped:
    """What one delivery means: events to store, incidents to remove, or why nothing.

    `stated` are event fields the payload states even when null (a reopened issue's
    `resolved_at`, a removed severity label): they are not filled from the stored row.
    `earliest` are fields where the earlier of the stored and the new value wins (a change's
    first review). `removed` holds (type, id) of records the source no longer has.
    """

    events: list[AnyEvent] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    ignored: str | None = None
    reason: str | None = None
    stated: frozenset[str] = frozenset()
    earliest: frozenset[str] = frozenset()


def _ignored(why: str, reason: str = NOT_TRACKED) -> Mapped:
    return Mapped(ignored=why, reason=reason)


def _get(payload: Any, path: str, required: bool = True) -> Any:
    node = payload
    for part in path.split("."):
        if not isinstance(node, dict):
            raise PayloadError(path, "required (payload is not a JSON object there)")
        node = node.get(part)
        if node is None:
            if required:
                raise PayloadError(path, "required")
            return None
    return node


def _text(payload: Any, path: str, required: bool = True) -> str | None:
    value = _get(payload, path, required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError(path, "must be a string or an integer")
    return str(value)


def _object(payload: dict[str, Any], path: str) -> dict[str, Any]:
    value = _get(payload, path)
    if not isinstance(value, dict):
        raise PayloadError(path, "must be a JSON object")
    return value


def _mapping(root: str, build: Any, *args: Any) -> Any:
    """Run a host mapping function on an object taken from the delivery; a missing key or an
    invalid value becomes a PayloadError naming its path under `root`."""
    try:
        return build(*args)
    except KeyError as exc:
        raise PayloadError(f"{root}.{exc.args[0]}", "required") from None
    except (TypeError, AttributeError):
        raise PayloadError(root, "does not have the expected shape") from None
    except ValidationError as exc:
        message = describe_validation_error(exc).lstrip(".")
        where, _, problem = message.partition(": ")
        raise PayloadError(f"{root} ({where})", problem or message) from None
    except ValueError as exc:  # a time the mapping compares (parse_time): garbled or out of range
        raise PayloadError(root, str(exc)) from None


def github_repository(payload: dict[str, Any]) -> str | None:
    """`owner/name` of the repository a GitHub delivery is about; None when it has none."""
    if not isinstance(payload.get("repository"), dict):
        return None
    return _text(payload, "repository.full_name")


def gitlab_project(payload: dict[str, Any]) -> str | None:
    """`group/project` of the project a GitLab delivery is about; None when it has none."""
    if not isinstance(payload.get("project"), dict):
        return None
    return _text(payload, "project.path_with_namespace")


def environment_name(name: str) -> str:
    """An environment name as the event format accepts it (the collectors' rule)."""
    return github_map.environment_name(name)


# -- GitHub ---------------------------------------------------------------------------------


def github_event(event: str, payload: dict[str, Any], service: ServiceConfig) -> Mapped:
    """Map one GitHub delivery (`X-GitHub-Event` name and JSON payload) for `service`."""
    name = service.name
    source = service.source
    if event == "deployment_status":
        status_obj = _object(payload, "deployment_status")
        deployment = _object(payload, "deployment")
        state = _text(payload, "deployment_status.state")
        if state == "inactive":  # a newer deployment replaced this one: nothing changes
            return _ignored("deployment status 'inactive' is not tracked")
        if state not in github_map.DEPLOYMENT_STATES:
            return _ignored(f"deployment status {state!r} is not tracked")
        _text(payload, "deployment.sha")
        if status_obj.get("environment"):
            deployment = {**deployment, "environment": status_obj["environment"]}
        mapped = _mapping(
            "deployment", github_map.map_deployment, name, deployment, [status_obj], None
        )
        return Mapped([mapped])
    if event == "workflow_run":
        run = _object(payload, "workflow_run")
        if not source.workflow:
            return _ignored("no deploy workflow configured for this service (source.workflow)")
        if payload.get("action") != "completed":
            return _ignored(f"workflow run {payload.get('action')!r} is not a deployment yet")
        branch = _text(payload, "repository.default_branch", required=False)
        if not github_map.is_deploy_run(run, source.workflow, branch):
            return _ignored(f"not a successful run of {source.workflow!r} on the default branch")
        environment = source.environments[0] if source.environments else None
        deployment = _mapping(
            "workflow_run", github_map.map_workflow_run, name, run, environment, None
        )
        return Mapped([deployment])
    if event == "pull_request":
        pull = _object(payload, "pull_request")
        change = _mapping("pull_request", github_map.map_pull_event, name, pull)
        return Mapped([change])
    if event == "pull_request_review":
        pull = _object(payload, "pull_request")
        review = _object(payload, "review")
        if payload.get("action") == "dismissed":
            return _ignored("a dismissed review is not a new review")
        first, approved = _mapping("review", github_map.review_times, pull, [review])
        if first is None:
            return _ignored("review by the pull request's author (or not submitted)")
        change = _mapping("pull_request", github_map.map_review, name, pull, first, approved)
        return Mapped([change], earliest=frozenset({"first_review_at", "approved_at"}))
    if event == "issues":
        issue = _object(payload, "issue")
        number = _text(payload, "issue.number")
        if "pull_request" in issue:
            return _ignored("issue event of a pull request")
        action = payload.get("action")
        if action in ("deleted", "transferred"):
            return Mapped(removed=[("incident", str(number))])
        if action == "unlabeled" and isinstance(payload.get("label"), dict):
            # the payload's issue may still list the label it reports removed
            gone = str(payload["label"].get("name", "")).casefold()
            labels = [
                label
                for label in issue.get("labels") or []
                if str((label or {}).get("name", "")).casefold() != gone
            ]
            issue = {**issue, "labels": labels}
        incident = _mapping("issue", github_map.map_issue, name, issue, source.incident_label)
        if incident is None:
            return Mapped(removed=[("incident", str(number))])
        return Mapped([incident], stated=INCIDENT_FIELDS)
    return _ignored(f"GitHub event {event!r} is not tracked", UNTRACKED_EVENT)


# -- GitLab ---------------------------------------------------------------------------------


def gitlab_time(value: str | None) -> str | None:
    """GitLab hook times as ISO-8601 (see `insights.collect.gitlab_map.gitlab_time`)."""
    return gitlab_map.gitlab_time(value)


def _gitlab_sha(payload: dict[str, Any]) -> str | None:
    url = _text(payload, "commit_url", required=False)
    tail = url.rstrip("/").rsplit("/", 1)[-1] if url else ""
    if _HEX.match(tail):
        return tail
    return _text(payload, "short_sha")


def gitlab_event(payload: dict[str, Any], service: ServiceConfig) -> Mapped:
    """Map one GitLab delivery by its `object_kind` for `service`."""
    name = service.name
    source = service.source
    kind = payload.get("object_kind")
    if kind == "deployment":
        raw_status = _text(payload, "status")
        status = gitlab_map.deployment_status({"status": raw_status})
        if raw_status not in gitlab_map.HOOK_STATUSES:
            return _ignored(f"deployment status {raw_status!r} is not tracked")
        changed = gitlab_time(_text(payload, "status_changed_at", required=False))
        deployment = {
            "id": _text(payload, "deployment_id"),
            "sha": _gitlab_sha(payload),
            "status": raw_status,
            "environment": {"name": _text(payload, "environment")},
            "created_at": None,
            "finished_at": changed if status is not DeploymentStatus.IN_PROGRESS else None,
            "updated_at": changed,
        }
        event = _mapping("deployment", gitlab_map.map_deployment, name, deployment, None)
        return Mapped([event])
    if kind == "pipeline":
        pipeline = _object(payload, "object_attributes")
        if not source.workflow:
            return _ignored("no deploy pipeline configured for this service (source.workflow)")
        branch = _text(payload, "project.default_branch", required=False)
        if not gitlab_map.is_deploy_pipeline(payload, source.workflow, branch):
            return _ignored(
                f"not a successful pipeline (or deploy job) {source.workflow!r}"
                " on the default branch"
            )
        environment = source.environments[0] if source.environments else None
        event = _mapping("object_attributes", gitlab_map.map_pipeline, name, pipeline, environment)
        return Mapped([event])
    if kind == "merge_request":
        attributes = _object(payload, "object_attributes")
        change = _mapping("object_attributes", gitlab_map.map_merge_request_hook, name, attributes)
        return Mapped([change])
    if kind in ("issue", "work_item"):
        attributes = _object(payload, "object_attributes")
        iid = _text(payload, "object_attributes.iid")
        issue = dict(attributes)
        if "labels" not in issue or not issue["labels"]:
            issue["labels"] = payload.get("labels") or []
        incident = _mapping(
            "object_attributes", gitlab_map.map_incident, name, issue, source.incident_label
        )
        if incident is None:
            return Mapped(removed=[("incident", str(iid))])
        return Mapped([incident], stated=INCIDENT_FIELDS)
    return _ignored(f"GitLab event {kind!r} is not tracked", UNTRACKED_EVENT)


def is_tracked(source: str, event: str) -> bool:
    """Whether deliveries of this kind can carry something to store."""
    return event in (GITHUB_TRACKED if source == "github" else GITLAB_TRACKED)
