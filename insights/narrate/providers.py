"""The one provider interface every LLM backend implements, and the registry that builds them.

A provider turns (system prompt, messages, max_tokens, temperature, timeout) into a
`Completion`: the text, the tokens it cost and why the model stopped. It knows nothing about
facts, narratives or tenants; `insights.narrate.llm` does the routing, checking and fallback.

A provider raises `ProviderError` when it cannot answer (after its own bounded retries on
throttling); the caller then falls back to the built-in narrator. Like httpx transports, a
provider is an object that tests build with a local server or a stubbed client, never a patch.

Example:
    provider = create_provider(LlmConfig(provider="openai", model="llama3.1",
                                         base_url="http://localhost:11434/v1"))
    answer = provider.complete(CompletionRequest(system="…", messages=(Message("user", "…"),)))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from tenacity import RetryCallState, Retrying, retry_if_exception_type

from insights.config import LlmConfig
from insights.errors import UserError

Role = Literal["user", "assistant"]


class ProviderError(Exception):
    """The provider gave no usable answer (refused, failed, timed out, retries exhausted)."""


@dataclass(frozen=True)
class Message:
    role: Role
    text: str


@dataclass(frozen=True)
class CompletionRequest:
    """One chat turn: a system prompt and the conversation so far (ending with the user)."""

    system: str
    messages: tuple[Message, ...]
    max_tokens: int = 1500
    temperature: float = 0.2
    timeout: float = 60.0


@dataclass(frozen=True)
class Completion:
    """A provider's answer. `stop_reason` is the provider's own word (`end_turn`, `stop`,
    `max_tokens`, `length`, …); `truncated` says whether the answer hit the token limit."""

    text: str
    tokens_in: int
    tokens_out: int
    stop_reason: str | None
    model: str

    @property
    def truncated(self) -> bool:
        return self.stop_reason in {"max_tokens", "length"}


class Provider(Protocol):
    """What `insights.narrate.llm` needs from a model backend."""

    name: str
    model: str

    @property
    def endpoint(self) -> str:
        """Where requests go (region or base URL): the unit of the concurrency limit."""
        ...

    def complete(self, request: CompletionRequest) -> Completion: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries on throttling: at most `attempts` calls, exponential waits from
    `initial_wait` doubling up to `max_wait` seconds; a server asking (Retry-After) for more
    than `max_wait` is not waited for."""

    attempts: int = 4
    initial_wait: float = 1.0
    max_wait: float = 20.0


ProviderFactory = Callable[[LlmConfig], Provider]
_REGISTRY: dict[str, ProviderFactory] = {}
PROVIDER_NAMES: tuple[str, ...] = ("builtin", "bedrock", "openai")


def register(name: str) -> Callable[[ProviderFactory], ProviderFactory]:
    """Class or function decorator: make `create_provider` build `name` with this factory."""

    def decorate(factory: ProviderFactory) -> ProviderFactory:
        _REGISTRY[name] = factory
        return factory

    return decorate


def create_provider(config: LlmConfig) -> Provider | None:
    """The provider a tenant's `[llm]` section names; `None` for `builtin` (no model call).

    A provider that is misconfigured (no model, no base URL) is a UserError naming the key.
    """
    if config.provider == "builtin":
        return None
    _load_builtin_providers()
    factory = _REGISTRY.get(config.provider)
    if factory is None:
        known = ", ".join(PROVIDER_NAMES)
        raise UserError(f"llm.provider: unknown provider {config.provider!r} (one of {known})")
    return factory(config)


def _load_builtin_providers() -> None:
    # Imported here so that a tenant on the built-in narrator never imports boto3.
    from insights.narrate import bedrock, openai_compat  # noqa: F401


class Throttled(Exception):
    """The provider asked us to slow down (Bedrock ThrottlingException, HTTP 429/503).

    `retry_after` is the server's requested wait in seconds, when it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def call_with_retries(
    call: Callable[[], Completion], policy: RetryPolicy, sleep: Callable[[float], None]
) -> Completion:
    """Run `call`, retrying `Throttled` with bounded exponential backoff (tenacity).

    A server's Retry-After is honoured when it is within `policy.max_wait`; asking for longer
    ends the retries at once. When the retries run out the result is a `ProviderError`.
    """

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Throttled) and exc.retry_after is not None:
            return exc.retry_after
        return min(policy.max_wait, policy.initial_wait * 2 ** (state.attempt_number - 1))

    def stop(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        too_long = isinstance(exc, Throttled) and (exc.retry_after or 0) > policy.max_wait
        return too_long or state.attempt_number >= policy.attempts

    retrying = Retrying(
        stop=stop,
        wait=wait,
        retry=retry_if_exception_type(Throttled),
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(call)
    except Throttled as exc:
        if exc.retry_after is not None and exc.retry_after > policy.max_wait:
            raise ProviderError(
                f"{exc}: the server asks to wait {exc.retry_after:g}s, more than the "
                f"{policy.max_wait:g}s bound"
            ) from None
        raise ProviderError(f"{exc}: still throttled after {policy.attempts} attempts") from None
