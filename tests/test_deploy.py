"""Container and Kubernetes files: they parse, and say what the operations guide promises."""

from __future__ import annotations

from pathlib import Path

import yaml

from insights.config import OrgConfig, load_org_config

ROOT = Path(__file__).resolve().parent.parent


def _k8s() -> dict[str, dict]:
    """Documents by kind; Deployments also by name (`Deployment/insights-worker`)."""
    docs = {}
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
            if "metadata" in doc:
                docs[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return docs


def test_compose_waits_for_a_healthy_database_and_migrates_before_serving():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    db, app = compose["services"]["db"], compose["services"]["app"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(v.startswith("pgdata:") for v in db["volumes"])
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert app["command"][-1].startswith("insights init && exec insights serve")
    assert app["environment"]["INSIGHTS_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert compose["services"]["llm"]["profiles"] == ["llm"]


def test_dockerfile_runs_as_non_root_and_starts_like_compose():
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("# ") and "FROM python:3.11-slim" in text
    assert "USER 10001" in text
    assert 'CMD ["sh", "-c", "insights init && exec insights serve' in text


def test_k8s_runs_two_replicas_probed_on_healthz_with_secrets_by_reference(tmp_path):
    docs = _k8s()
    spec = docs["Deployment/insights"]["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    [app] = pod["containers"]
    assert app["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"secretRef": {"name": "insights-secrets"}} in app["envFrom"]
    assert pod["initContainers"][0]["command"] == ["insights", "init"]
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    assert "CronJob" not in docs
    # The ConfigMap's insights.toml is a valid organisation file.
    config = tmp_path / "insights.toml"
    config.write_text(docs["ConfigMap"]["data"]["insights.toml"])
    org: OrgConfig = load_org_config(config)
    assert [t.name for t in org.tenants] == ["default"]


def test_k8s_splits_api_scheduler_and_workers_on_the_postgresql_queue():
    docs = _k8s()
    kustomized = yaml.safe_load((ROOT / "deploy" / "k8s" / "kustomization.yaml").read_text())
    assert {"deployment.yaml", "scheduler.yaml", "worker.yaml"} <= set(kustomized["resources"])

    def container(name: str) -> dict:
        [only] = docs[f"Deployment/{name}"]["spec"]["template"]["spec"]["containers"]
        return only

    def env(name: str) -> dict[str, str]:
        return {e["name"]: e["value"] for e in container(name)["env"]}

    assert env("insights")["INSIGHTS_SCHEDULER"] == "off"
    assert container("insights-scheduler")["command"][:2] == ["insights", "scheduler"]
    assert container("insights-worker")["command"][:2] == ["insights", "worker"]
    for name in ("insights", "insights-scheduler", "insights-worker"):
        assert env(name)["INSIGHTS_QUEUE"] == "procrastinate"
        assert {"secretRef": {"name": "insights-secrets"}} in container(name)["envFrom"]
        labels = docs[f"Deployment/{name}"]["spec"]["selector"]["matchLabels"]
        assert labels == docs[f"Deployment/{name}"]["spec"]["template"]["metadata"]["labels"]
    secret = docs["Secret"]["stringData"]
    assert {"INSIGHTS_SECRET_KEYS", "INSIGHTS_ADMIN_TOKEN"} <= set(secret)


def test_compose_runs_a_worker_on_the_database_queue():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    app, worker = compose["services"]["app"], compose["services"]["worker"]
    assert app["environment"]["INSIGHTS_QUEUE"] == "procrastinate"
    assert worker["environment"]["INSIGHTS_QUEUE"] == "procrastinate"
    assert worker["command"][:2] == ["insights", "worker"]
    assert worker["depends_on"]["app"]["condition"] == "service_healthy"
    assert (
        worker["environment"]["INSIGHTS_DATABASE_URL"]
        == app["environment"]["INSIGHTS_DATABASE_URL"]
    )
