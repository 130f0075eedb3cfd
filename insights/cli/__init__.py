"""The `insights` command line: one Typer app; each area's commands live in a sibling module.

User mistakes (`UserError`) print one line on stderr and exit 2; `--debug` shows tracebacks.

Start-up cost is part of the interface (a CI step pays it on every `insights record`): this
package and the command modules import only Typer and the standard library at module level;
each command imports what it uses when it runs, so `insights --help` loads no pandas,
SQLAlchemy, pydantic or rich (`python -X importtime -m insights.cli --help` shows it, and
`benchmarks/cli_startup.py` measures it).
"""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, Any

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperCommand, TyperGroup

from insights import __version__
from insights.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console


class _Consoles:
    """rich consoles, made on first use (importing rich costs a tenth of a second)."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


console: Any = _Consoles(stderr=False)
err_console: Any = _Consoles(stderr=True)


def _debug(ctx: typer.Context) -> bool:
    root = ctx.find_root()
    return bool(root.params.get("debug")) or os.environ.get("INSIGHTS_DEBUG") == "1"


def _one_line_error(ctx: typer.Context, message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    ctx.exit(2)


# Typer's plain help labels every value with its Python type (`<str>`, `<bool>` on flags) and
# wraps required arguments in braces (`{file}`); our options carry metavars instead.
_TYPE_LABEL = re.compile(r" <(?:str|bool)>")
_REQUIRED_ARG = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.-]*)\}")


def _tidy_help(text: str) -> str:
    return _REQUIRED_ARG.sub(r"\1", _TYPE_LABEL.sub("", text))


class Command(TyperCommand):
    """A command whose help shows metavars, not Python type names."""

    def get_help(self, ctx: typer.Context) -> str:  # type: ignore[override]
        return _tidy_help(super().get_help(ctx))

    def get_usage(self, ctx: typer.Context) -> str:  # type: ignore[override]
        return _tidy_help(super().get_usage(ctx))


class Group(TyperGroup):
    """Turns user errors into one line on stderr and exit code 2 (unless --debug)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Commands registered with a plain `@app.command()` get the same help formatting:
        # Command only adds methods, so switching the class of a TyperCommand is safe.
        _adopt(self)

    def get_help(self, ctx: typer.Context) -> str:  # type: ignore[override]
        return _tidy_help(super().get_help(ctx))

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except UserError as exc:
            if _debug(ctx):
                raise
            _one_line_error(ctx, str(exc))
        except UsageError as exc:
            # Click prints usage + hint + error on three lines; a CI log wants one.
            if _debug(ctx) or exc.ctx is None or isinstance(exc, NoArgsIsHelpError):
                raise  # a bare `insights record` shows its help, as asked
            where = exc.ctx.command_path
            _one_line_error(ctx, f"{exc.format_message()} (see `{where} --help`)")
        except Exception as exc:
            # SQLAlchemy is imported only by commands that use a database: look it up lazily.
            sa_exc = sys.modules.get("sqlalchemy.exc")
            if sa_exc is None or not isinstance(exc, sa_exc.OperationalError) or _debug(ctx):
                raise
            first = str(exc.orig or exc).strip().splitlines()[0]
            _one_line_error(
                ctx, f"database: {first} (check INSIGHTS_DATABASE_URL, run `insights init`)"
            )


def _adopt(group: TyperGroup) -> None:
    """Give every command and sub-group under `group` our help formatting (and one-line
    errors), however it was registered."""
    for command in group.commands.values():
        if type(command) is TyperCommand:
            command.__class__ = Command
        elif type(command) is TyperGroup:
            command.__class__ = Group
            _adopt(command)


def sub_app(help: str) -> typer.Typer:
    """A command group (`insights record …`) with the same help style as the root."""
    return typer.Typer(cls=Group, help=help, no_args_is_help=True, rich_markup_mode=None)


app = typer.Typer(
    cls=Group,
    help="DORA Insights: DORA metrics from your delivery data, narrated and delivered.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help: rich markup would eat `[tenants.llm]` in docstrings and cost an import.
    rich_markup_mode=None,
    add_completion=False,
)


def command(name: str | None = None, *, on: typer.Typer | None = None) -> Any:
    """Register a command on `app` (or the group `on`) with our help formatting."""
    return (on or app).command(name, cls=Command)


def _version(value: bool) -> None:
    if value:
        print(f"insights {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """DORA Insights: DORA metrics from your delivery data, narrated and delivered."""


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


# Each module below adds its commands to `app` when imported (they import only Typer at top).
from insights.cli import data as _data  # noqa: E402, F401
from insights.cli import metrics as _metrics  # noqa: E402, F401
from insights.cli import narrate as _narrate  # noqa: E402,F401
from insights.cli import ops as _ops  # noqa: E402, F401
from insights.cli import registry as _registry  # noqa: E402, F401
from insights.cli import report as _report  # noqa: E402, F401
from insights.cli import serve as _serve  # noqa: E402, F401
from insights.cli import sync as _sync  # noqa: E402, F401
from insights.cli import worker as _worker  # noqa: E402, F401
