"""Help at an 80-column terminal never cuts an option's name (`--refund-application-…`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import click
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from shub_pay.cli.app import app

_CUT_OPTION = re.compile(r"--[\w-]*…")


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if hasattr(group, "list_commands"):  # typer's groups are not click.Group subclasses here
        context = click.Context(group)
        for name in group.list_commands(context):
            sub = group.get_command(context, name)
            if sub is not None and not sub.hidden:
                yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(get_command(app)))


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "shub-pay" for p in COMMANDS])
def test_help_at_80_columns_shows_every_option_name_whole(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert not _CUT_OPTION.search(result.output), result.output
    assert all(len(line) <= 80 for line in result.output.splitlines())
