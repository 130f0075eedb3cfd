"""The `insights` command line: one Typer app; each area's commands live in a sibling module.

User mistakes (`UserError`) print one line on stderr and exit 2; `--debug` shows tracebacks.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError
from typer.core import TyperGroup

from insights.errors import UserError

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
console = Console(highlight=False, soft_wrap=True)


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.params.get("debug")) or os.environ.get("INSIGHTS_DEBUG") == "1"


class _Group(TyperGroup):
    """Turns user errors into one line on stderr and exit code 2 (unless --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            if _debug(ctx):
                raise
            err_console.print(f"error: {exc}", markup=False)
            ctx.exit(2)
        except OperationalError as exc:
            if _debug(ctx):
                raise
            first = str(exc.orig or exc).strip().splitlines()[0]
            err_console.print(
                f"error: database: {first} (check INSIGHTS_DATABASE_URL, run `insights init`)",
                markup=False,
            )
            ctx.exit(2)


app = typer.Typer(
    cls=_Group,
    help="DORA Insights: DORA metrics from your delivery data, narrated and delivered.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    add_completion=False,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """DORA Insights: DORA metrics from your delivery data, narrated and delivered."""


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


# Each module below adds its commands to `app` when imported.
from insights.cli import data as _data  # noqa: E402, F401
from insights.cli import metrics as _metrics  # noqa: E402, F401
from insights.cli import narrate as _narrate  # noqa: E402,F401
from insights.cli import ops as _ops  # noqa: E402, F401
from insights.cli import registry as _registry  # noqa: E402, F401
from insights.cli import report as _report  # noqa: E402, F401
from insights.cli import serve as _serve  # noqa: E402, F401
from insights.cli import sync as _sync  # noqa: E402, F401
from insights.cli import worker as _worker  # noqa: E402, F401
