"""`events replay --dry-run` for people: Stripe's times as ISO 8601 UTC, not Unix seconds."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from tests.conftest import Cli
from tests.support.shop import Shop
from tests.support.terminal import run_in_terminal

ISO = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


@pytest.fixture
def shop(imported_catalog: Session, engine: Engine, gateway: Any, stripe_sandbox: Any) -> Shop:
    return Shop(engine=engine, gateway=gateway, sandbox=stripe_sandbox)


def _iso(created: int) -> str:
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d %H:%M:%S")


def test_the_dry_run_table_shows_readable_times(
    shop: Shop, db_url: str, stripe_env: dict[str, str]
) -> None:
    shop.buy("p_aurora", "b_mia")
    cli = Cli(db_url, env=stripe_env)
    args = ("events", "replay", "--dry-run", "--type", "checkout.session.completed")
    document = json.loads(cli(*args, "--format", "json").stdout)
    (event,) = document["would_process"]
    created = event["created"]
    assert isinstance(created, int)  # JSON keeps Stripe's Unix time
    piped = cli(*args)
    assert piped.exit_code == 0
    header, row = piped.stdout.splitlines()
    cells = dict(zip(header.split("\t"), row.split("\t"), strict=True))
    assert cells["id"] == event["id"]
    assert cells["created"] == _iso(created)
    assert str(created) not in piped.stdout
    as_csv = list(csv.DictReader(io.StringIO(cli(*args, "--format", "csv").stdout)))
    assert as_csv[0]["created"] == str(created)  # CSV: Stripe's integer, for machines
    screen = run_in_terminal("--database-url", db_url, *args, env=stripe_env)
    assert screen.exit_code == 0, screen.text
    table = [line for line in screen.lines if line[:1] and line[0] in "┏┃┡│└"]
    assert table and all(len(line) <= 80 for line in table)
    assert "created (UTC)" in table[1]
    # The time may wrap between date and clock at 80 columns, but never into Unix seconds.
    date, clock = _iso(created).split(" ")
    assert date in screen.text and clock in screen.text and str(created) not in screen.text
    assert event["id"] in screen.text  # whole, at 80 columns
    assert ISO.fullmatch(cells["created"])
