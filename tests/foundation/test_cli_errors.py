"""One error style everywhere (issue 18, items 8 and 11): Click's own usage errors, interrupts,
global options after the command, a group named alone, flags shown as flags.

A person at a terminal reads `error:` and `hint:` on stderr; a script that asked for
`--format json` reads one JSON document on stdout, whatever went wrong and wherever `--format`
stood on the line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from shub_pay.cli.app import COMMANDS, app
from tests.conftest import Cli
from tests.support.startup import run_shub_pay

BOX = ("╭", "│", "╰", "─")  # Typer's Rich error panel


def _invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


USAGE_ERRORS = [
    (("orders", "list", "--limt", "3"), "No such option: --limt"),
    (("orders", "list", "--limit", "abc"), "Invalid value for '--limit'"),
    (("orders", "list", "--limit", "0"), "Invalid value for '--limit'"),
    (("orders", "list", "--format", "xml"), "'xml' is not one of"),
    (("orders", "show"), "Missing argument"),
    (("refunds", "issue", "SH-1", "--amount"), "Option '--amount' requires an argument"),
    (("--databse-url", "sqlite://", "orders", "list"), "No such option: --databse-url"),
    (("ordrs", "list"), "No such command 'ordrs'. Did you mean 'orders'?"),
]


@pytest.mark.parametrize(
    ("args", "message"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS]
)
def test_a_usage_error_is_one_error_line_and_a_hint_exit_2(
    sqlite_cli: Cli, args: tuple[str, ...], message: str
) -> None:
    result = _invoke("--database-url", sqlite_cli.database_url, *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert lines[1].startswith("hint: see `shub-pay") and lines[1].endswith("--help`")
    assert len(lines) == 2
    assert not any(mark in result.stderr for mark in BOX)
    assert "Usage:" not in result.stderr and "Try '" not in result.stderr


JSON_USAGE_ERRORS = [
    ("orders", "list", "--limt", "3", "--format", "json"),
    ("orders", "list", "--format", "json", "--limt", "3"),
    ("orders", "list", "--limit", "abc", "--format", "json"),  # refused before --format is read
    ("orders", "list", "--format", "json", "--limit", "abc"),
    ("orders", "show", "--format", "json"),
    ("refunds", "issue", "SH-1", "--format", "json", "--amount"),
    ("--databse-url", "sqlite://", "orders", "list", "--format", "json"),
    ("ordrs", "list", "--format", "json"),
    ("reconcile", "payouts", "--bogus", "-f", "json"),  # reconcile has a --format of its own
]


@pytest.mark.parametrize("args", JSON_USAGE_ERRORS, ids=[" ".join(a) for a in JSON_USAGE_ERRORS])
def test_under_format_json_a_usage_error_is_the_json_error_document(
    sqlite_cli: Cli, args: tuple[str, ...]
) -> None:
    result = _invoke("--database-url", sqlite_cli.database_url, *args)
    assert result.exit_code == 2, result.output
    assert result.stderr == ""
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "usage_error"
    as_text = _invoke("--database-url", sqlite_cli.database_url, *args[:-2])
    if args[-2:] == ("--format", "json"):  # the same message a person reads
        assert as_text.stderr.splitlines()[0] == f"error: {error['message']}"
    assert error["hint"].startswith("see `shub-pay") and error["hint"].endswith("--help`")


def test_short_and_joined_format_spellings_count_as_json(sqlite_cli: Cli) -> None:
    for fmt in (["-f", "json"], ["--format=json"], ["-fjson"], ["-f", "JSON"]):
        result = _invoke(
            "--database-url", sqlite_cli.database_url, "orders", "list", "--limt", *fmt
        )
        assert result.exit_code == 2
        assert json.loads(result.stdout)["error"]["code"] == "usage_error", fmt


def test_in_a_real_process_a_usage_error_exits_2_with_no_panel(tmp_path: Path) -> None:
    run = run_shub_pay("orders", "list", "--limt", "3", cwd=tmp_path)
    assert run.exit_code == 2
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        "error: No such option: --limt (Possible options: --limit)",
        "hint: see `shub-pay orders list --help`",
    ]
    as_json = run_shub_pay("orders", "list", "--limt", "3", "-f", "json", cwd=tmp_path)
    assert as_json.exit_code == 2 and as_json.stderr == ""
    assert json.loads(as_json.stdout)["error"]["message"].startswith("No such option: --limt")


# --- interrupts ------------------------------------------------------------------------------


def _interrupt_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    def ctrl_c(**_: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("shub_pay.services.orders.view.list_orders", ctrl_c)


def test_ctrl_c_in_the_middle_of_a_command_is_130_and_one_line(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _interrupt_listing(monkeypatch)
    result = cli("orders", "list")
    assert result.exit_code == 130
    assert result.stderr == "error: interrupted\n"
    assert result.stdout == ""
    under_debug = cli("orders", "list", "--debug")  # no traceback for a person's Ctrl-C
    assert under_debug.exit_code == 130 and "Traceback" not in under_debug.stderr
    as_json = cli("orders", "list", "--format", "json")
    assert as_json.exit_code == 130
    assert json.loads(as_json.stdout) == {
        "error": {"code": "interrupted", "message": "interrupted", "hint": None}
    }


def test_a_real_sigint_during_a_command_exits_130_without_a_traceback(
    sqlite_url: str, tmp_path: Path
) -> None:
    # The signal itself, delivered to the process while `orders list` reads the database.
    code = (
        "import signal, sys\n"
        "import shub_pay.services.orders.view as view\n"
        "def listing(**_):\n"
        "    signal.raise_signal(signal.SIGINT)\n"
        "view.list_orders = listing\n"
        "sys.argv = ['shub-pay', 'orders', 'list']\n"
        "from shub_pay.cli.app import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"DATABASE_URL": sqlite_url, "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr == "error: interrupted\n"


# --- global options after the command ---------------------------------------------------------


def test_database_url_after_the_command_means_the_same_as_before(
    db_url: str, tmp_path: Path
) -> None:
    missing = f"sqlite:///{tmp_path / 'typo.db'}"
    env = {"DATABASE_URL": missing}
    assert _invoke("orders", "list", env=env).exit_code == 3  # the environment's: no such file

    after = _invoke("orders", "list", "--format", "json", "--database-url", db_url, env=env)
    assert after.exit_code == 0, after.output
    assert json.loads(after.stdout) == []
    # Given twice, the one nearer the command's end wins (as a repeated option does).
    both = _invoke("--database-url", missing, "orders", "list", "--database-url", db_url)
    assert both.exit_code == 0, both.output
    wrong_last = _invoke("--database-url", db_url, "orders", "list", "--database-url", missing)
    assert wrong_last.exit_code == 3
    assert "no database at" in wrong_last.stderr
    # Between the group and its command too.
    middle = _invoke("orders", "--database-url", db_url, "list", env=env)
    assert middle.exit_code == 0, middle.output


def test_env_file_after_the_command(sqlite_url: str, tmp_path: Path) -> None:
    env_file = tmp_path / "shop.env"
    env_file.write_text(f"DATABASE_URL={sqlite_url}\n")
    result = _invoke("orders", "list", "--env-file", str(env_file), env={"DATABASE_URL": ""})
    assert result.exit_code == 0, result.output


def test_debug_after_the_command_shows_the_traceback_and_keeps_the_exit_code(
    sqlite_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr("shub_pay.services.orders.view.list_orders", broken)
    quiet = sqlite_cli("orders", "list")
    assert quiet.exit_code == 70 and "Traceback" not in quiet.stderr
    loud = sqlite_cli("orders", "list", "--debug")
    assert loud.exit_code == 70
    assert "Traceback" in loud.stderr and "RuntimeError: a bug" in loud.stderr


def test_global_options_stay_out_of_each_commands_help(sqlite_cli: Cli) -> None:
    # Listed once, in `shub-pay --help`, which says they may follow the command.
    root = sqlite_cli("--help")
    assert "may also follow the command" in root.stdout
    shown = sqlite_cli("orders", "list", "--help")
    assert shown.exit_code == 0
    assert "--database-url" not in shown.stdout and "--debug" not in shown.stdout


# --- a group named alone ----------------------------------------------------------------------

GROUPS = [
    name
    for name, command in get_command(app).commands.items()  # type: ignore[attr-defined]
    if hasattr(command, "commands") and not command.invoke_without_command
]


@pytest.mark.parametrize("name", GROUPS)
def test_a_group_without_a_command_prints_its_help_on_stderr_exit_2(name: str) -> None:
    for args in ((name,), (name, "--debug")):
        result = _invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stdout == ""
        assert result.stderr.startswith(f"Usage: shub-pay {name} [OPTIONS] COMMAND")
        assert "Commands:" in result.stderr
        assert "Missing command" not in result.stderr and "error:" not in result.stderr


def test_reconcile_named_alone_still_runs_reconcile() -> None:
    root = get_command(app)
    assert "reconcile" not in GROUPS
    assert root.commands["reconcile"].no_args_is_help is False  # type: ignore[attr-defined]


# --- flags are flags --------------------------------------------------------------------------


def _all_help() -> list[tuple[str, str]]:
    texts = []
    root = get_command(app)
    paths: list[tuple[str, ...]] = [()]
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        paths.append((name,))
        paths.extend((name, sub) for sub in getattr(command, "commands", {}))
    for path in paths:
        result = _invoke(*path, "--help", env={"COLUMNS": "80"})
        assert result.exit_code == 0, path
        texts.append((" ".join(path), result.stdout))
    return texts


def test_boolean_options_appear_as_flags_without_a_type_label() -> None:
    for path, text in _all_help():
        assert "<bool>" not in text and "BOOLEAN" not in text, path
    refunds = dict(_all_help())["refunds issue"].split("\nOptions:\n")[1]
    flags = [line.split()[0] for line in refunds.splitlines() if line.startswith("  --")]
    assert "--reverse-transfer" in flags and "--dry-run" in flags
    dry_run = next(line for line in refunds.splitlines() if line.startswith("  --dry-run"))
    assert dry_run.split()[1] == "Show"  # the help follows the flag, no metavar between
    assert list(COMMANDS)  # every group was walked
