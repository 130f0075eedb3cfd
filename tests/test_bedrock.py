"""Bedrock provider on a real boto3 `bedrock-runtime` client wrapped in botocore's Stubber,
which checks every request and stubbed response against the Converse API shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from llm_support import as_text, converse_response, good_answer, sample_report

from insights.config import LlmConfig
from insights.errors import UserError
from insights.narrate.bedrock import BedrockProvider
from insights.narrate.facts import build_facts
from insights.narrate.llm import narrate_with
from insights.narrate.providers import RetryPolicy

PROFILE = "eu.anthropic.claude-3-5-haiku-20241022-v1:0"
FAST = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=1.0)


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="eu-central-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def facts() -> dict[str, Any]:
    return build_facts(sample_report())


def llm_config(**overrides: Any) -> LlmConfig:
    values: dict[str, Any] = {
        "provider": "bedrock",
        "model": "anthropic.claude-3-5-haiku-20241022-v1:0",
        "inference_profile": PROFILE,
        "region": "eu-central-1",
        "max_tokens": 900,
        "temperature": 0.1,
    }
    values.update(overrides)
    return LlmConfig(**values)


def expected_first_call(model_id: str = PROFILE) -> dict[str, Any]:
    return {
        "modelId": model_id,
        "system": [{"text": ANY}],
        "messages": [{"role": "user", "content": [{"text": ANY}]}],
        "inferenceConfig": {"maxTokens": 900, "temperature": 0.1},
    }


def throttle(stubber: Stubber) -> None:
    stubber.add_client_error(
        "converse",
        service_error_code="ThrottlingException",
        service_message="Too many requests, please wait before trying again.",
        http_status_code=429,
    )


def test_converse_request_uses_the_inference_profile_and_answer_is_accepted(
    client: Any, stubber: Stubber, facts: dict[str, Any]
) -> None:
    stubber.add_response(
        "converse",
        converse_response(as_text(good_answer()), input_tokens=2100, output_tokens=410),
        expected_params=expected_first_call(),
    )
    sleeps: list[float] = []
    provider = BedrockProvider(llm_config(), client=client, retry=FAST, sleep=sleeps.append)
    result = narrate_with(provider, llm_config(), facts)

    assert result.outcome == "accepted", result.reason
    assert (result.provider, result.model) == ("bedrock", PROFILE)
    assert (result.tokens_in, result.tokens_out) == (2100, 410)
    # Claude 3.5 Haiku: $0.80 in / $4.00 out per million tokens.
    assert result.cost_usd == pytest.approx(2100 * 0.8e-6 + 410 * 4e-6)
    assert sleeps == []


def test_model_id_is_used_when_no_inference_profile_is_configured(
    client: Any, stubber: Stubber, facts: dict[str, Any]
) -> None:
    config = llm_config(inference_profile=None)
    stubber.add_response(
        "converse",
        converse_response(as_text(good_answer())),
        expected_params=expected_first_call("anthropic.claude-3-5-haiku-20241022-v1:0"),
    )
    result = narrate_with(BedrockProvider(config, client=client, retry=FAST), config, facts)
    assert result.outcome == "accepted"


def test_throttling_then_success_is_retried_with_backoff(
    client: Any, stubber: Stubber, facts: dict[str, Any]
) -> None:
    throttle(stubber)
    stubber.add_client_error(
        "converse",
        service_error_code="ServiceUnavailableException",
        service_message="Service is unavailable.",
        http_status_code=503,
    )
    stubber.add_response(
        "converse", converse_response(as_text(good_answer())), expected_params=expected_first_call()
    )
    sleeps: list[float] = []
    provider = BedrockProvider(llm_config(), client=client, retry=FAST, sleep=sleeps.append)
    result = narrate_with(provider, llm_config(), facts)

    assert result.outcome == "accepted"
    assert sleeps == [0.01, 0.02]


def test_throttling_on_every_attempt_falls_back(
    client: Any, stubber: Stubber, facts: dict[str, Any]
) -> None:
    for _ in range(3):
        throttle(stubber)
    sleeps: list[float] = []
    provider = BedrockProvider(llm_config(), client=client, retry=FAST, sleep=sleeps.append)
    result = narrate_with(provider, llm_config(), facts)

    assert result.outcome == "fallback" and result.provider == "builtin"
    assert "ThrottlingException" in (result.reason or "")
    assert "still throttled after 3 attempts" in (result.reason or "")
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("ValidationException", 400, "The provided model identifier is invalid."),
        ("AccessDeniedException", 403, "You don't have access to the model."),
        ("ModelTimeoutException", 408, "Model has timed out in processing the request."),
    ],
)
def test_non_retryable_error_falls_back_without_retrying(
    client: Any, stubber: Stubber, facts: dict[str, Any], code: str, status: int, message: str
) -> None:
    stubber.add_client_error(
        "converse", service_error_code=code, service_message=message, http_status_code=status
    )
    sleeps: list[float] = []
    provider = BedrockProvider(llm_config(), client=client, retry=FAST, sleep=sleeps.append)
    result = narrate_with(provider, llm_config(), facts)

    assert result.outcome == "fallback"
    assert result.reason == f"bedrock failed: bedrock {code}: {message}"
    assert sleeps == [] and result.tokens_in == 0
    assert result.narrative.recommendations


def test_answer_cut_at_max_tokens_is_repaired_in_a_second_converse_turn(
    client: Any, stubber: Stubber, facts: dict[str, Any]
) -> None:
    cut = as_text(good_answer())[:200]
    stubber.add_response("converse", converse_response(cut, output_tokens=900, stop="max_tokens"))
    stubber.add_response(
        "converse",
        converse_response(as_text(good_answer())),
        expected_params={
            **expected_first_call(),
            "messages": [
                {"role": "user", "content": [{"text": ANY}]},
                {"role": "assistant", "content": [{"text": cut}]},
                {"role": "user", "content": [{"text": ANY}]},
            ],
        },
    )
    provider = BedrockProvider(llm_config(), client=client, retry=FAST)
    result = narrate_with(provider, llm_config(), facts)

    assert result.outcome == "repaired"
    assert result.tokens_out == 900 + 300


def test_bedrock_without_model_is_a_user_error(client: Any) -> None:
    with pytest.raises(UserError, match=r"llm\.model"):
        BedrockProvider(LlmConfig(provider="bedrock", region="eu-central-1"), client=client)


def test_bedrock_client_is_built_for_the_configured_region() -> None:
    provider = BedrockProvider(llm_config(region="us-west-2"))
    assert provider.endpoint == "bedrock:us-west-2"
    assert provider.client.meta.config.retries["total_max_attempts"] == 1
