"""The CLI's surface: one option vocabulary, readable help, `--version`, and start-up that loads
only what a command needs (checked in fresh interpreters, the way a CI step starts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from insights import __version__
from insights.cli import app
from insights.cli.common import resolve_target
from insights.cli.metrics import parse_rate
from insights.errors import UserError
from insights.metrics.result import Scope

runner = CliRunner()

WINDOWED = ("compute", "metrics", "gate", "report", "narrate", "digest", "demo")
SCOPED = ("metrics", "gate", "narrate")


def _commands() -> dict[str, typer.core.TyperCommand]:
    """Every leaf command by its path (`record deployment`)."""
    root = typer.main.get_command(app)
    found: dict[str, typer.core.TyperCommand] = {}

    def walk(group, prefix: str) -> None:
        for name, command in group.commands.items():
            path = f"{prefix}{name}"
            if hasattr(command, "commands"):
                walk(command, f"{path} ")
            else:
                found[path] = command

    walk(root, "")
    return found


def _options(command) -> dict[str, set[str]]:
    """--long option → every spelling of it (short forms included)."""
    out = {}
    for param in command.params:
        spellings = set(param.opts) | set(getattr(param, "secondary_opts", []))
        longs = [o for o in spellings if o.startswith("--")]
        if longs:
            out[longs[0]] = spellings
    return out


def test_every_windowed_command_takes_window_from_and_to():
    commands = _commands()
    for name in WINDOWED:
        options = _options(commands[name])
        assert {"--window", "-w"} <= options["--window"], name
        assert "--from" in options and "--to" in options, name


def test_scoped_commands_share_scope_service_and_team():
    commands = _commands()
    for name in SCOPED:
        options = _options(commands[name])
        assert options["--scope"] == {"--scope"}, name
        assert options["--service"] == {"--service", "-s"}, name
        assert options["--team"] == {"--team"}, name


def test_the_same_option_is_spelled_the_same_everywhere():
    """-t is always --tenant, -s always --service, -w always --window, -f always --format."""
    meaning = {"-t": "--tenant", "-s": "--service", "-w": "--window", "-f": "--format"}
    for name, command in _commands().items():
        for spellings in _options(command).values():
            for short, long in meaning.items():
                if short in spellings:
                    assert long in spellings, (name, spellings)
        options = _options(command)
        if "--tenant" in options:
            assert "-t" in options["--tenant"], name
        if "--format" in options:
            assert "-f" in options["--format"], name


def test_help_has_metavars_not_type_placeholders():
    for name in _commands():
        result = runner.invoke(app, [*name.split(), "--help"])
        assert result.exit_code == 0, name
        for placeholder in ("<bool>", "<str>", "{file}", "{FILE}", "{tenant}", "{TENANT}"):
            assert placeholder not in result.stdout, (name, placeholder, result.stdout)
    imported = runner.invoke(app, ["import", "--help"], prog_name="insights").stdout
    assert "Usage: insights import [OPTIONS] FILE" in imported


def test_narrate_help_keeps_its_text():
    text = runner.invoke(app, ["narrate", "--help"]).stdout
    assert "Uses the tenant's [tenants.llm] routing (cache, monthly budget" in text


def test_version_prints_the_package_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"insights {__version__}\n"


def test_a_usage_mistake_is_one_line_with_exit_2():
    result = runner.invoke(app, ["metrics", "--bogus"], prog_name="insights")
    assert result.exit_code == 2
    assert result.stderr == ("error: No such option: --bogus (see `insights metrics --help`)\n")


@pytest.mark.parametrize(
    ("text", "value"), [("0.15", 0.15), ("15%", 0.15), (" 7.5 % ", 0.075), ("0", 0.0), (".2", 0.2)]
)
def test_rates_accept_fractions_and_percentages(text, value):
    assert parse_rate(text, "--max-change-failure-rate") == pytest.approx(value)


@pytest.mark.parametrize("text", ["fifteen", "15", "150%", "-0.1", "0.1.2", ""])
def test_a_bad_rate_is_a_one_line_error_naming_the_option(text):
    with pytest.raises(UserError) as caught:
        parse_rate(text, "--max-change-failure-rate")
    assert str(caught.value).startswith(f"--max-change-failure-rate {text!r}: ")


def test_scope_tenant_name_as_gate_prints_it_names_the_tenant():
    assert resolve_target(None, "tenant:acme") == ("acme", Scope(kind="tenant", name="acme"))
    assert resolve_target("acme", "tenant:acme") == ("acme", Scope(kind="tenant", name="acme"))
    assert resolve_target(None, "tenant") == ("default", Scope(kind="tenant", name="default"))
    assert resolve_target("acme", None, "checkout") == (
        "acme",
        Scope(kind="service", name="checkout"),
    )
    assert resolve_target(None, None, None, "payments") == (
        "default",
        Scope(kind="team", name="payments"),
    )
    with pytest.raises(UserError, match="names tenant 'acme' but --tenant is 'other'"):
        resolve_target("other", "tenant:acme")


# --- start-up: what a fresh process imports ------------------------------------------------

HEAVY = ("pandas", "numpy", "sqlalchemy", "alembic", "pydantic", "rich", "psycopg")

PROBE = """
import json, sys
from insights.cli import app
try:
    app(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _loaded(args: list[str], env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_loads_no_pandas_sqlalchemy_pydantic_or_rich():
    assert _loaded(["--help"], dict(os.environ)) == []
    # a command's help: Typer 0.29 itself coerces parameters through pydantic (typer._adapters)
    assert _loaded(["record", "deployment", "--help"], dict(os.environ)) in ([], ["pydantic"])


def test_record_loads_neither_pandas_nor_alembic(tmp_path):
    env = {**os.environ, "INSIGHTS_DATABASE_URL": f"sqlite:///{tmp_path / 'i.db'}"}
    env.pop("INSIGHTS_CONFIG", None)
    assert "alembic" in _loaded(["tenant", "list"], env)  # the first use migrates the file
    loaded = _loaded(["record", "deployment", "-s", "api", "--sha", "abcdef12"], env)
    assert "sqlalchemy" in loaded and "pydantic" in loaded  # it did write
    assert "pandas" not in loaded and "numpy" not in loaded and "alembic" not in loaded


def test_a_bare_command_group_shows_its_help_not_an_error():
    result = runner.invoke(app, ["record"], prog_name="insights")
    assert "Usage: insights record [OPTIONS] COMMAND [ARGS]..." in result.output
    assert "error:" not in result.output
