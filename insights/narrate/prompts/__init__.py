"""Versioned prompt templates for LLM narration (`narrate_v2.*.j2`) and their rendering.

`PROMPT_VERSION` names the template set; it is part of the narrative cache key, so changing a
template means adding `narrate_v3.*.j2` and bumping the constant (old cached narratives then
stop matching). The facts document, minus its `untrusted` and `quotable` sections, is the only
source of numbers in the prompt. Untrusted text (change titles) is cleaned, cut to
`UNTRUSTED_MAX` characters and fenced between two lines carrying a random boundary that the
text itself cannot guess or close, with an instruction never to follow it.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from insights.narrate.capabilities import capabilities_for
from insights.narrate.schema import METRICS

PROMPT_VERSION = "narrate_v2"
UNTRUSTED_MAX = 120
HIDDEN_KEYS = ("untrusted", "quotable")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]+")

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent),
    undefined=StrictUndefined,
    autoescape=False,  # plain-text prompts; untrusted text is fenced, not escaped
    keep_trailing_newline=False,
)


@dataclass(frozen=True)
class UntrustedItem:
    """One piece of collected text: where it came from (`ref`) and the cleaned text."""

    ref: str
    text: str


def untrusted_items(facts: dict[str, Any]) -> list[UntrustedItem]:
    """Every string under `facts["untrusted"]`, cleaned and cut to `UNTRUSTED_MAX` characters.

    >>> untrusted_items({"untrusted": {"change_titles": {"api#7": "Fix\\nlogin"}}})
    [UntrustedItem(ref='api#7', text='Fix login')]
    """
    items: list[UntrustedItem] = []

    def walk(ref: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(str(key), inner)
        elif isinstance(value, list):
            for inner in value:
                walk(ref, inner)
        elif isinstance(value, str):
            text = " ".join(_CONTROL.sub(" ", value).split())
            if len(text) > UNTRUSTED_MAX:
                text = text[: UNTRUSTED_MAX - 1] + "…"
            if text:
                items.append(UntrustedItem(_CONTROL.sub(" ", ref)[:80], text))

    walk("untrusted", facts.get("untrusted") or {})
    return items


def facts_json(facts: dict[str, Any]) -> str:
    """The facts the model may quote, as stable JSON (sorted keys, no untrusted text)."""
    visible = {k: v for k, v in facts.items() if k not in HIDDEN_KEYS}
    return json.dumps(visible, sort_keys=True, ensure_ascii=False, default=str)


def render_system() -> str:
    capabilities = {metric: capabilities_for(metric) for metric in METRICS}
    return (
        _env.get_template(f"{PROMPT_VERSION}.system.j2")
        .render(metrics=METRICS, capabilities=capabilities)
        .strip()
    )


def render_user(facts: dict[str, Any], boundary: str | None = None) -> str:
    """The first user message: the facts document and the fenced untrusted data."""
    boundary = boundary or f"UNTRUSTED-{secrets.token_hex(8)}"
    scope = facts.get("scope") or {}
    window = facts.get("window") or {}
    return (
        _env.get_template(f"{PROMPT_VERSION}.user.j2")
        .render(
            scope_kind=scope.get("kind", "scope"),
            scope_name=scope.get("name", ""),
            window_label=window.get("label", ""),
            facts_json=facts_json(facts),
            untrusted=untrusted_items(facts),
            boundary=boundary,
        )
        .strip()
    )


def render_repair(errors: Sequence[str]) -> str:
    """The repair message: what the checker found wrong, and the rules again."""
    return (
        _env.get_template(f"{PROMPT_VERSION}.repair.j2")
        .render(errors=list(errors), metrics=METRICS)
        .strip()
    )
