"""The command-line frame: help everywhere, errors mapped in one place, light imports."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import typer
from typer.main import get_command

from shub_pay.cli.app import app
from shub_pay.cli.errors import ShubPayGroup
from shub_pay.cli.output import Format, FormatOption
from shub_pay.errors import ConflictError
from tests.conftest import Cli


def _walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found.extend(_walk(sub, (*path, name)))
    return found


def test_every_command_and_group_has_help_text_with_an_example() -> None:
    commands = _walk(get_command(app))
    assert len(commands) > 5
    for path, command in commands:
        assert (command.help or "").strip(), f"shub-pay {' '.join(path)} has no help text"
        if not hasattr(command, "commands"):
            assert "Example:" in (command.help or ""), f"shub-pay {' '.join(path)} has no example"


def test_help_lists_the_command_groups(sqlite_cli: Cli) -> None:
    result = sqlite_cli("--help")
    assert result.exit_code == 0
    for group in ("db", "config", "catalog", "audit"):
        assert group in result.stdout


def test_help_does_not_import_stripe_or_sqlmodel() -> None:
    code = (
        "import sys\n"
        "from shub_pay.cli.app import main\n"
        "sys.argv = ['shub-pay', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('stripe', 'sqlmodel', 'sqlalchemy', 'uvicorn') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY=\n" in out.stdout, out.stdout[-300:]


def test_version_prints_the_version(sqlite_cli: Cli) -> None:
    result = sqlite_cli("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("shub-pay ")


def test_an_unknown_order_is_a_usage_error_with_a_hint(sqlite_cli: Cli) -> None:
    result = sqlite_cli("audit", "--order", "SH-NOPE")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "no order 'SH-NOPE'" in result.stderr
    assert "hint:" in result.stderr


def test_errors_under_format_json_are_one_json_document(sqlite_cli: Cli) -> None:
    result = sqlite_cli("audit", "--order", "SH-NOPE", "--format", "json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "not_found"
    assert error["hint"]


def _tiny_app(exc: BaseException) -> typer.Typer:
    tiny = typer.Typer(cls=ShubPayGroup)

    @tiny.callback()
    def _root() -> None:
        pass

    @tiny.command()
    def boom(fmt: FormatOption = Format.TABLE) -> None:
        """Raise. Example: boom"""
        raise exc

    return tiny


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ConflictError("refund above refundable"), 5),
        (KeyboardInterrupt(), 130),
        (RuntimeError("sk_test_0123456789abcdefghijkl leaked?"), 70),
    ],
)
def test_errors_map_to_exit_codes_without_tracebacks_or_secrets(
    exc: BaseException, code: int
) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(_tiny_app(exc), ["boom"])
    assert result.exit_code == code
    assert "Traceback" not in result.stderr
    assert "0123456789abcdefghijkl" not in result.stderr
