"""Estimated cost of a model call: a small table of list prices in USD per million tokens.

The estimate is for budgeting and the `insights usage` view, not billing. Prices are on-demand
list prices as published by AWS (Bedrock, us-east-1) and OpenAI in 2025; check the provider's
pricing page before relying on them. A model is matched by the longest table key contained in
its id, so `us.anthropic.claude-3-5-haiku-20241022-v1:0` (an inference profile) and
`anthropic.claude-3-5-haiku-20241022-v1:0` price the same. A model not in the table (a local
Ollama/vLLM model, for example) is priced at 0 and `insights usage` shows it as unpriced.
"""

from __future__ import annotations

# model id fragment → (USD per 1M input tokens, USD per 1M output tokens)
PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    # Amazon Bedrock
    "anthropic.claude-3-5-sonnet": (3.00, 15.00),
    "anthropic.claude-3-7-sonnet": (3.00, 15.00),
    "anthropic.claude-sonnet-4": (3.00, 15.00),
    "anthropic.claude-3-5-haiku": (0.80, 4.00),
    "anthropic.claude-3-haiku": (0.25, 1.25),
    "amazon.nova-micro": (0.035, 0.14),
    "amazon.nova-lite": (0.06, 0.24),
    "amazon.nova-pro": (0.80, 3.20),
    "meta.llama3-1-8b-instruct": (0.22, 0.22),
    "meta.llama3-1-70b-instruct": (0.72, 0.72),
    "mistral.mistral-large-2402": (4.00, 12.00),
    # OpenAI (hosted)
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
}


def price_of(model: str | None) -> tuple[float, float] | None:
    """(input, output) USD per million tokens for `model`, or None when it is not listed.

    >>> price_of("us.anthropic.claude-3-haiku-20240307-v1:0")
    (0.25, 1.25)
    """
    if not model:
        return None
    matches = [key for key in PRICES_PER_MILLION if key in model]
    return PRICES_PER_MILLION[max(matches, key=len)] if matches else None


def estimate_cost(model: str | None, tokens_in: int, tokens_out: int) -> float:
    """Estimated USD for one call; 0.0 for a model without a listed price.

    >>> estimate_cost("gpt-4o-mini", 1_000_000, 500_000)
    0.45
    """
    price = price_of(model)
    if price is None:
        return 0.0
    return round(tokens_in * price[0] / 1e6 + tokens_out * price[1] / 1e6, 6)
