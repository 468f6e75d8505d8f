"""Cron starts `events replay` every few minutes as the same user on the same host: the lease
belongs to one run, so a second run is refused while the first is alive, and takes over the
lease of a run that was killed instead of waiting for it to expire."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from shub_pay.db import make_engine
from shub_pay.domain.models import ReplayCursor
from shub_pay.services.audit import default_actor
from shub_pay.services.events.replay import LOCK_NAME, acquire_lease
from tests.conftest import Cli


@pytest.fixture
def replay_cli(db_url: str, stripe_env: dict[str, str]) -> Cli:
    return Cli(db_url, env=stripe_env)


@pytest.fixture
def first_run() -> Iterator[subprocess.Popen[bytes]]:
    """A process standing for a replay started earlier by the same user on this host."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process
    process.kill()
    process.wait()


def _owner_of(process: subprocess.Popen[Any]) -> str:
    return f"{default_actor()}@{socket.gethostname()} pid {process.pid} run 0123abcd"


def _holder(engine: Engine) -> str | None:
    with Session(engine) as session:
        lock = session.get(ReplayCursor, LOCK_NAME)
        return lock.locked_by if lock else None


def test_a_second_run_of_the_same_user_is_refused_while_the_first_is_alive(
    replay_cli: Cli, engine: Engine, first_run: subprocess.Popen[bytes]
) -> None:
    first = acquire_lease(engine, owner=_owner_of(first_run), now=datetime.now(UTC))
    second = replay_cli("events", "replay", "--format", "json")
    assert second.exit_code == 5, second.stdout
    error = json.loads(second.stdout)["error"]
    assert error["code"] == "replay_locked"
    assert f"pid {first_run.pid}" in error["message"]
    assert _holder(engine) == _owner_of(first_run)
    first.release()


def test_two_cli_runs_of_the_same_user_never_overlap(
    replay_cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shub_pay.services.events import replay

    # The first run is still going: it has taken the lease and not released it yet.
    going: list[replay.Lease] = []
    monkeypatch.setattr(replay.Lease, "release", lambda lease: going.append(lease))
    assert replay_cli("events", "replay").exit_code == 0
    first_owner = _holder(engine)
    assert first_owner is not None and first_owner.startswith(f"{default_actor()}@")
    second = replay_cli("events", "replay", "--format", "json")
    assert second.exit_code == 5, second.stdout
    assert json.loads(second.stdout)["error"]["code"] == "replay_locked"
    assert _holder(engine) == first_owner
    monkeypatch.undo()
    going[0].release()


def test_the_lease_of_a_killed_run_is_taken_over_at_once(
    replay_cli: Cli, engine: Engine, first_run: subprocess.Popen[bytes]
) -> None:
    acquire_lease(engine, owner=_owner_of(first_run), now=datetime.now(UTC))
    first_run.kill()
    first_run.wait()
    resumed = replay_cli("events", "replay", "--format", "json")
    assert resumed.exit_code == 0, resumed.stdout + resumed.stderr
    assert _holder(engine) is None  # taken, used, released


def test_a_live_lease_from_another_host_is_respected(replay_cli: Cli, engine: Engine) -> None:
    alive = acquire_lease(engine, owner="cron@other-host pid 1 run 0123abcd", now=datetime.now(UTC))
    assert replay_cli("events", "replay").exit_code == 5
    alive.release()


_OTHER_HOST_RUN = """
import sys, time
from datetime import UTC, datetime
from shub_pay.db import make_engine
from shub_pay.services.events.replay import acquire_lease
lease = acquire_lease(make_engine(sys.argv[1]), owner="cron@db-host-2 pid 4242 run 0badc0de",
                      now=datetime.now(UTC))
print("held", flush=True)
time.sleep(300)
"""


@pytest.mark.postgres
def test_on_postgresql_a_crashed_run_from_another_host_is_taken_over_at_once(
    postgres_url: str, stripe_env: dict[str, str]
) -> None:
    """The run's advisory lock ends with its connection: no ten minutes of an ownerless lease."""
    cli = Cli(postgres_url, env=stripe_env)
    other = subprocess.Popen(
        [sys.executable, "-c", _OTHER_HOST_RUN, postgres_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "held"
        refused = cli("events", "replay", "--format", "json")
        assert refused.exit_code == 5, refused.stdout
        error = json.loads(refused.stdout)["error"]
        assert "db-host-2" in error["message"] and "frees it at once" in error["hint"]
    finally:
        other.kill()  # kill -9: no release, no goodbye to the database
        other.wait()
    engine = make_engine(postgres_url)
    try:
        deadline = time.monotonic() + 10  # the server notices the closed socket at once
        while True:
            taken = cli("events", "replay", "--format", "json")
            if taken.exit_code != 5 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert taken.exit_code == 0, taken.stdout + taken.stderr
        assert _holder(engine) is None  # taken over, used, released
    finally:
        engine.dispose()
