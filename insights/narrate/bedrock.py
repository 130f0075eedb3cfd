"""Amazon Bedrock provider: the `bedrock-runtime` Converse API through boto3.

Request: `modelId` (the tenant's inference profile when configured, else the model id),
`system=[{text}]`, `messages=[{role, content:[{text}]}]`, `inferenceConfig={maxTokens,
temperature}`. Answer: the text blocks of `output.message.content`, `usage.inputTokens` /
`outputTokens`, `stopReason`.

Errors: ThrottlingException and ServiceUnavailableException are retried with bounded backoff
(botocore's own retries are switched off so the bound is ours); ValidationException,
AccessDeniedException, ModelTimeoutException and every other failure become a `ProviderError`
and the caller falls back to the built-in narrator. Credentials come from the standard AWS
chain (environment, profile, instance/task role); the IAM policy needs `bedrock:InvokeModel`
on the model or inference profile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from insights.config import LlmConfig
from insights.errors import UserError
from insights.narrate.providers import (
    Completion,
    CompletionRequest,
    ProviderError,
    RetryPolicy,
    Throttled,
    call_with_retries,
    register,
)

RETRYABLE = frozenset({"ThrottlingException", "ServiceUnavailableException"})


def bedrock_client(config: LlmConfig) -> Any:
    """A `bedrock-runtime` client for the tenant's region, with our timeout and no
    botocore-level retries (we retry throttling ourselves, within a bound)."""
    try:
        return boto3.client(
            "bedrock-runtime",
            region_name=config.region,
            config=Config(
                read_timeout=config.timeout_seconds,
                connect_timeout=min(10.0, config.timeout_seconds),
                retries={"total_max_attempts": 1, "mode": "standard"},
            ),
        )
    except NoRegionError:
        raise UserError(
            "llm.region: Bedrock needs a region (set llm.region or AWS_REGION)"
        ) from None


@register("bedrock")
class BedrockProvider:
    """Narrates through Bedrock Converse; `client` is a boto3 `bedrock-runtime` client."""

    name = "bedrock"

    def __init__(
        self,
        config: LlmConfig,
        client: Any | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        model_id = config.inference_profile or config.model
        if not model_id:
            raise UserError("llm.model: the bedrock provider needs a model id or inference_profile")
        self.model = model_id
        self.client = client if client is not None else bedrock_client(config)
        self.retry = retry or RetryPolicy()
        self.sleep = sleep

    @property
    def endpoint(self) -> str:
        return f"bedrock:{self.client.meta.region_name}"

    def complete(self, request: CompletionRequest) -> Completion:
        return call_with_retries(lambda: self._converse(request), self.retry, self.sleep)

    def _converse(self, request: CompletionRequest) -> Completion:
        try:
            response = self.client.converse(
                modelId=self.model,
                system=[{"text": request.system}],
                messages=[
                    {"role": m.role, "content": [{"text": m.text}]} for m in request.messages
                ],
                inferenceConfig={
                    "maxTokens": request.max_tokens,
                    "temperature": request.temperature,
                },
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "ClientError")
            message = f"bedrock {code}: {error.get('Message', '')}".rstrip(": ")
            if code in RETRYABLE:
                raise Throttled(message) from None
            raise ProviderError(message) from None
        except BotoCoreError as exc:
            raise ProviderError(f"bedrock: {exc}") from None
        content = response.get("output", {}).get("message", {}).get("content", [])
        text = "".join(block["text"] for block in content if "text" in block)
        usage = response.get("usage", {})
        return Completion(
            text=text,
            tokens_in=int(usage.get("inputTokens", 0)),
            tokens_out=int(usage.get("outputTokens", 0)),
            stop_reason=response.get("stopReason"),
            model=self.model,
        )
