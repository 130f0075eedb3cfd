"""OpenAI-compatible provider: `POST {base_url}/chat/completions` (vLLM, Ollama, llama.cpp
server, hosted endpoints) through httpx.

JSON mode (`response_format: {"type": "json_object"}`) is asked for first; a server that
rejects it with HTTP 400 is asked again without it, and the provider remembers. 429 and 503 are
retried with bounded backoff, honouring `Retry-After` when it is within the bound. A timeout,
a refused key or any other error is a `ProviderError` (the caller falls back). The API key is
read from the environment variable `llm.api_key_env` at call time and never appears in errors.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from insights.config import LlmConfig, secret
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
from insights.timeutil import now

RETRY_STATUSES = frozenset({429, 503})


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds: a number of seconds or an HTTP date; None when absent/bad.

    >>> retry_after_seconds("3")
    3.0
    """
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - now()).total_seconds())
    except (TypeError, ValueError):
        return None


@register("openai")
class OpenAICompatProvider:
    """Narrates through any OpenAI-compatible chat completions endpoint."""

    name = "openai"

    def __init__(
        self,
        config: LlmConfig,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not config.base_url:
            raise UserError(
                "llm.base_url: the openai provider needs a base URL "
                "(e.g. http://localhost:11434/v1 for Ollama)"
            )
        if not config.model:
            raise UserError("llm.model: the openai provider needs a model name")
        self.model = config.model
        self.base_url = config.base_url.rstrip("/")
        self.api_key_env = config.api_key_env
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.json_mode = True
        self.client = httpx.Client(timeout=config.timeout_seconds, transport=transport)

    @property
    def endpoint(self) -> str:
        return self.base_url

    def complete(self, request: CompletionRequest) -> Completion:
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            try:
                key = secret(self.api_key_env, "llm.api_key_env")
            except UserError as exc:
                raise ProviderError(str(exc)) from None
            headers["Authorization"] = f"Bearer {key}"
        return call_with_retries(lambda: self._post(request, headers), self.retry, self.sleep)

    def _post(self, request: CompletionRequest, headers: dict[str, str]) -> Completion:
        url = f"{self.base_url}/chat/completions"
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": request.system}]
            + [{"role": m.role, "content": m.text} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": False,
        }
        post = functools.partial(self.client.post, url, headers=headers, timeout=request.timeout)
        try:
            if self.json_mode:
                response = post(json={**body, "response_format": {"type": "json_object"}})
                if response.status_code == 400:
                    # Servers without JSON mode reject the field; ask again without it.
                    self.json_mode = False
            if not self.json_mode:
                response = post(json=body)
        except httpx.TimeoutException:
            raise ProviderError(f"{url}: no answer within {request.timeout:g}s") from None
        except httpx.TransportError as exc:
            raise ProviderError(f"{url}: {type(exc).__name__}: {exc}") from None
        return self._completion(url, response)

    def _completion(self, url: str, response: httpx.Response) -> Completion:
        status = response.status_code
        if status in RETRY_STATUSES:
            raise Throttled(
                f"{url}: HTTP {status}", retry_after_seconds(response.headers.get("Retry-After"))
            )
        if status in (401, 403):
            raise ProviderError(f"{url}: HTTP {status}: the API key was refused")
        if status != 200:
            raise ProviderError(f"{url}: HTTP {status}: {_error_text(response)}")
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise ProviderError(f"{url}: not a chat.completions response") from None
        usage = data.get("usage") or {}
        return Completion(
            text=text,
            tokens_in=int(usage.get("prompt_tokens") or 0),
            tokens_out=int(usage.get("completion_tokens") or 0),
            stop_reason=choice.get("finish_reason"),
            model=str(data.get("model") or self.model),
        )


def _error_text(response: httpx.Response) -> str:
    """The server's error message (OpenAI error shape, else the start of the body)."""
    try:
        error = response.json().get("error")
        if isinstance(error, dict):
            return str(error.get("message", ""))[:200]
        if isinstance(error, str):
            return error[:200]
    except (ValueError, AttributeError):
        pass
    return json.dumps(response.text[:200])
