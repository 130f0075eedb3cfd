"""OpenAI-compatible provider against a local HTTP server returning real chat.completions
bodies: the wire format, JSON mode, retries, timeouts, and each answer's narration outcome."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from llm_support import (
    INJECTION,
    as_text,
    chat_body,
    good_answer,
    hallucinated_answer,
    injected_answer,
    sample_report,
)
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from insights.config import LlmConfig
from insights.errors import UserError
from insights.narrate.facts import build_facts
from insights.narrate.llm import narrate_with
from insights.narrate.openai_compat import OpenAICompatProvider, retry_after_seconds
from insights.narrate.providers import CompletionRequest, Message, ProviderError, RetryPolicy

PATH = "/v1/chat/completions"
FAST = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=5.0)


def config(httpserver: HTTPServer, **overrides: Any) -> LlmConfig:
    values: dict[str, Any] = {
        "provider": "openai",
        "model": "llama3.1:8b",
        "base_url": httpserver.url_for("/v1"),
        "timeout_seconds": 5.0,
        "max_tokens": 800,
        "temperature": 0.1,
    }
    values.update(overrides)
    return LlmConfig(**values)


def provider(httpserver: HTTPServer, sleeps: list[float] | None = None, **overrides: Any):
    recorder = sleeps if sleeps is not None else []
    return OpenAICompatProvider(config(httpserver, **overrides), retry=FAST, sleep=recorder.append)


def request_json(index: int, httpserver: HTTPServer) -> dict[str, Any]:
    return json.loads(httpserver.log[index][0].get_data())


@pytest.fixture
def facts() -> dict[str, Any]:
    return build_facts(sample_report())


def simple_request() -> CompletionRequest:
    return CompletionRequest(
        system="sys", messages=(Message("user", "hello"),), max_tokens=50, timeout=5.0
    )


# -- the provider on the wire ----------------------------------------------------------------


def test_chat_completion_returns_text_usage_and_stop_reason_and_sends_the_key(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_LLM_KEY", "sk-test-123")
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        chat_body('{"ok": true}', prompt_tokens=11, completion_tokens=4)
    )
    answer = provider(httpserver, api_key_env="LOCAL_LLM_KEY").complete(simple_request())

    assert (answer.text, answer.tokens_in, answer.tokens_out) == ('{"ok": true}', 11, 4)
    assert answer.stop_reason == "stop" and not answer.truncated
    sent, _ = httpserver.log[0]
    assert sent.headers["Authorization"] == "Bearer sk-test-123"
    body = json.loads(sent.get_data())
    assert body["model"] == "llama3.1:8b"
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hello"},
    ]
    assert (body["max_tokens"], body["stream"]) == (50, False)


def test_server_rejecting_json_mode_is_asked_again_without_it(httpserver: HTTPServer) -> None:
    def handler(request: Request) -> Response:
        if "response_format" in json.loads(request.get_data()):
            error = {"error": {"message": "response_format is not supported", "code": 400}}
            return Response(json.dumps(error), status=400, content_type="application/json")
        return Response(json.dumps(chat_body("{}")), content_type="application/json")

    httpserver.expect_request(PATH, method="POST").respond_with_handler(handler)
    llm = provider(httpserver)
    assert llm.complete(simple_request()).text == "{}"
    assert llm.complete(simple_request()).text == "{}"

    # Rejected once, then remembered: 1 + 1 + 1 requests, not 2 + 2.
    assert len(httpserver.log) == 3
    assert "response_format" not in request_json(2, httpserver)


def test_429_is_retried_after_the_wait_the_server_asks_for(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(
        {"error": {"message": "rate limited"}}, status=429, headers={"Retry-After": "2"}
    )
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(
        {"error": {"message": "overloaded"}}, status=503
    )
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(chat_body("{}"))
    sleeps: list[float] = []
    assert provider(httpserver, sleeps).complete(simple_request()).text == "{}"
    # Retry-After honoured, then exponential backoff from the policy's initial wait.
    assert sleeps == [2.0, 0.02]


def test_retry_after_longer_than_the_bound_gives_up_at_once(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"error": {"message": "quota"}}, status=429, headers={"Retry-After": "3600"}
    )
    sleeps: list[float] = []
    with pytest.raises(ProviderError, match="asks to wait 3600s, more than the 5s bound"):
        provider(httpserver, sleeps).complete(simple_request())
    assert sleeps == [] and len(httpserver.log) == 1


def test_throttled_on_every_attempt_is_a_provider_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json({}, status=429)
    with pytest.raises(ProviderError, match="still throttled after 3 attempts"):
        provider(httpserver).complete(simple_request())
    assert len(httpserver.log) == 3


def test_refused_key_error_does_not_contain_the_key(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_LLM_KEY", "sk-secret-value")
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"error": {"message": "Incorrect API key provided: sk-secr*****alue"}}, status=401
    )
    with pytest.raises(ProviderError) as raised:
        provider(httpserver, api_key_env="LOCAL_LLM_KEY").complete(simple_request())
    assert "401" in str(raised.value) and "sk-secret-value" not in str(raised.value)


def test_unset_api_key_variable_is_a_provider_error_naming_it(httpserver: HTTPServer) -> None:
    with pytest.raises(ProviderError, match="NO_SUCH_LLM_KEY is not set"):
        provider(httpserver, api_key_env="NO_SUCH_LLM_KEY").complete(simple_request())
    assert httpserver.log == []


def test_missing_base_url_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"llm\.base_url"):
        OpenAICompatProvider(LlmConfig(provider="openai", model="m"))


def test_non_chat_completion_body_is_a_provider_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_data("<html>proxy</html>")
    with pytest.raises(ProviderError, match=r"not a chat\.completions response"):
        provider(httpserver).complete(simple_request())


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds("soon") is None


# -- outcomes of a narration -----------------------------------------------------------------


def test_good_json_is_accepted(httpserver: HTTPServer, facts: dict[str, Any]) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        chat_body(as_text(good_answer()), prompt_tokens=1500, completion_tokens=320)
    )
    result = narrate_with(provider(httpserver), config(httpserver), facts)

    assert result.outcome == "accepted", result.reason
    assert (result.provider, result.model) == ("openai", "llama3.1:8b")
    assert result.narrative.recommendations[0].metric == "lead_time"
    assert (result.tokens_in, result.tokens_out) == (1500, 320)
    assert result.prompt_version == "narrate_v2"
    # The prompt carries the facts but neither the quotable lists nor the raw untrusted key.
    user = request_json(0, httpserver)["messages"][1]["content"]
    assert '"median_hours": 20.5' in user and '"quotable"' not in user


def test_malformed_json_is_repaired(httpserver: HTTPServer, facts: dict[str, Any]) -> None:
    cut = as_text(good_answer())[:150]
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(chat_body(cut))
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(
        chat_body("```json\n" + as_text(good_answer()) + "\n```")
    )
    result = narrate_with(provider(httpserver), config(httpserver), facts)

    assert result.outcome == "repaired", result.reason
    assert (result.tokens_in, result.tokens_out) == (1800, 420)  # both calls counted
    repair = request_json(1, httpserver)["messages"]
    assert [m["role"] for m in repair] == ["system", "user", "assistant", "user"]
    assert repair[2]["content"] == cut
    assert "not valid JSON" in repair[3]["content"]


def test_hallucinated_number_is_sent_back_and_repaired(
    httpserver: HTTPServer, facts: dict[str, Any]
) -> None:
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(
        chat_body(as_text(hallucinated_answer()))
    )
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(
        chat_body(as_text(good_answer()))
    )
    result = narrate_with(provider(httpserver), config(httpserver), facts)

    assert result.outcome == "repaired"
    assert (
        "37.5 is not a number from the facts"
        in request_json(1, httpserver)["messages"][3]["content"]
    )
    assert "37.5" not in result.narrative.summary


def test_hallucinated_number_twice_falls_back_to_builtin(
    httpserver: HTTPServer, facts: dict[str, Any]
) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        chat_body(as_text(hallucinated_answer()))
    )
    result = narrate_with(provider(httpserver), config(httpserver), facts)

    assert result.outcome == "fallback" and result.provider == "builtin"
    assert "37.5 is not a number from the facts" in (result.reason or "")
    assert len(httpserver.log) == 2
    assert result.tokens_in == 1800  # the failed attempts still cost tokens


def test_injected_instruction_echoed_back_is_rejected_and_falls_back(
    httpserver: HTTPServer,
) -> None:
    facts = build_facts(sample_report(title=INJECTION))
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        chat_body(as_text(injected_answer()))
    )
    result = narrate_with(provider(httpserver), config(httpserver), facts)

    assert result.outcome == "fallback"
    assert "weakening a safeguard" in (result.reason or "")
    delivered = result.narrative.model_dump_json().lower()
    assert "delet" not in delivered and "ignore previous" not in delivered
    # The title reached the model only inside the fence; the repair round-trip did not resend
    # the answer that repeated it, and the checker's errors do not quote it.
    first_user = request_json(0, httpserver)["messages"][1]["content"]
    fence = first_user.split("UNTRUSTED-")
    assert len(fence) == 4 and INJECTION in fence[2]  # instruction line, open, close
    repair = request_json(1, httpserver)["messages"]
    assert INJECTION not in repair[2]["content"] and INJECTION not in repair[3]["content"]


def test_429_then_success_is_accepted(httpserver: HTTPServer, facts: dict[str, Any]) -> None:
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(
        {"error": {"message": "rate limited"}}, status=429, headers={"Retry-After": "0"}
    )
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(
        chat_body(as_text(good_answer()))
    )
    result = narrate_with(provider(httpserver), config(httpserver), facts)
    assert result.outcome == "accepted" and len(httpserver.log) == 2


def test_timeout_falls_back_to_builtin(httpserver: HTTPServer, facts: dict[str, Any]) -> None:
    def slow(request: Request) -> Response:
        time.sleep(1.0)
        return Response(json.dumps(chat_body(as_text(good_answer()))))

    httpserver.expect_request(PATH, method="POST").respond_with_handler(slow)
    result = narrate_with(
        provider(httpserver, timeout_seconds=0.3), config(httpserver, timeout_seconds=0.3), facts
    )
    assert result.outcome == "fallback"
    assert "no answer within 0.3s" in (result.reason or "")
    assert result.latency_ms >= 300  # the time spent waiting is recorded
    assert result.narrative.recommendations  # the built-in narrator still wrote one
    deadline = time.monotonic() + 5  # let the server finish before the next test reuses it
    while not httpserver.log and time.monotonic() < deadline:
        time.sleep(0.05)


def test_answer_cut_at_max_tokens_is_repaired(
    httpserver: HTTPServer, facts: dict[str, Any]
) -> None:
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(
        chat_body(as_text(good_answer())[:300], finish_reason="length")
    )
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(
        chat_body(as_text(good_answer()))
    )
    result = narrate_with(provider(httpserver), config(httpserver), facts)
    assert result.outcome == "repaired"
    assert "cut off at max_tokens=800" in request_json(1, httpserver)["messages"][3]["content"]
