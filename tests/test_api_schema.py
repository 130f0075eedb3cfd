"""schemathesis: requests generated from the app's own OpenAPI document never get a 5xx.

Runs each operation with a small, bounded number of examples against a real database, with a
valid token (so generated bodies reach the handlers, not just the 401). Equivalent CLI run
against a live server: `schemathesis run http://127.0.0.1:8000/openapi.json -H
"Authorization: Bearer $TOKEN" --checks not_a_server_error --max-examples 25`.
"""

from __future__ import annotations

import pytest
import schemathesis
from api_support import make_api
from conftest import POSTGRES_URL
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

MAX_EXAMPLES = 12


@pytest.fixture
def api(db, tmp_path, monkeypatch):
    yield from make_api(db, tmp_path, monkeypatch)


# PostgreSQL when configured: it is the stricter backend (NUL bytes, lengths, types)
@pytest.mark.parametrize("db", ["postgresql" if POSTGRES_URL else "sqlite"], indirect=True)
def test_generated_requests_never_get_a_server_error(api):
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case):
            case.call_and_validate(headers=api.auth(), checks=[not_a_server_error])

        no_server_error()
    statuses = {
        sample.labels["status"]
        for metric in api.client.app.state.metrics.requests.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }
    assert not any(status.startswith("5") for status in statuses)
    assert {"200", "404", "422"} <= statuses, statuses  # generated requests got past auth
