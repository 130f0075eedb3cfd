"""The HTTP API: events, metrics, reports and webhooks for CI pipelines and Git hosts."""
