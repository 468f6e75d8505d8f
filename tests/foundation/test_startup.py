"""Start-up: `shub-pay --help` and every group's help load Typer and Rich, not the ORM, the
migration tool or the Stripe SDK; the migration gate knows the head without Alembic."""

from __future__ import annotations

import inspect

import pytest

from shub_pay.cli.app import COMMANDS, app
from tests.support.startup import HEAVY, run_shub_pay

GROUP_MODULES = sorted({entry.module for entry in COMMANDS.values()})


def _command_rows(help_text: str) -> dict[str, str]:
    """The "Commands:" section of a help text: each name and its summary, wrapped lines joined."""
    rows: dict[str, str] = {}
    section = help_text.split("\nCommands:\n", 1)[1]
    name = ""
    for line in section.splitlines():
        if not line.strip():
            break
        if line.startswith("  ") and not line.startswith("   "):
            name, _, summary = line.strip().partition(" ")
            rows[name] = summary.strip()
        else:
            rows[name] += " " + line.strip()
    return rows


@pytest.mark.parametrize("columns", ["200", "80"])
def test_the_root_help_lists_every_command_without_importing_any(columns: str) -> None:
    run = run_shub_pay("--help", env={"COLUMNS": columns})
    assert run.exit_code == 0, run.stderr
    assert run.loaded(*HEAVY) == []
    assert run.loaded(*GROUP_MODULES) == []
    # Plain help (Click's formatter), never Typer's Rich renderer nor Rich itself.
    assert run.loaded("rich", "typer.rich_utils", "markdown_it", "pygments") == []
    # Every summary whole, at any width (Click would cut a long one with "...").
    assert _command_rows(run.stdout) == {name: e.summary for name, e in COMMANDS.items()}


def test_no_arguments_prints_the_same_help_and_loads_as_little() -> None:
    run = run_shub_pay()
    assert run.exit_code == 2
    assert "orders" in run.stdout + run.stderr
    assert run.loaded(*HEAVY, *GROUP_MODULES) == []


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_groups_help_loads_only_that_group(name: str) -> None:
    run = run_shub_pay(name, "--help")
    assert run.exit_code == 0, run.stderr
    assert run.loaded(*HEAVY) == [], f"shub-pay {name} --help"
    assert run.loaded(*GROUP_MODULES) == [COMMANDS[name].module]


def test_an_unknown_command_is_refused_with_a_suggestion_without_loading_the_groups() -> None:
    run = run_shub_pay("ordrs")
    assert run.exit_code == 2
    assert "Did you mean 'orders'?" in run.stderr
    assert run.loaded(*HEAVY, *GROUP_MODULES) == []


def test_each_summary_in_the_root_help_is_the_commands_own_first_paragraph() -> None:
    from typer.main import get_command

    root = get_command(app)
    assert list(root.commands) == list(COMMANDS), (  # type: ignore[attr-defined]
        "register a new command group in shub_pay.cli.app.COMMANDS (module, attribute, summary), "
        "not with app.add_typer: --help would import it"
    )
    for name, entry in COMMANDS.items():
        command = root.commands[name]  # type: ignore[attr-defined]
        first = inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]
        assert " ".join(first.split()) == entry.summary, f"shub-pay {name}"


def test_the_head_known_without_alembic_is_alembics_head() -> None:
    from shub_pay.db import head_revision
    from shub_pay.migrations import HEAD_REVISION

    assert head_revision() == HEAD_REVISION, (
        "a migration was added: set shub_pay.migrations.HEAD_REVISION to its revision id"
    )
