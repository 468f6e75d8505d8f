"""Cron starts `events replay` every few minutes as the same user on the same host: the lease
belongs to one run, so a second run is refused while the first is alive, and takes over the
lease of a run that was killed instead of waiting for it to expire."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

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
    acquire_lease(engine, owner=_owner_of(first_run), now=datetime.now(UTC))
    second = replay_cli("events", "replay", "--format", "json")
    assert second.exit_code == 5, second.stdout
    error = json.loads(second.stdout)["error"]
    assert error["code"] == "replay_locked"
    assert f"pid {first_run.pid}" in error["message"]
    assert _holder(engine) == _owner_of(first_run)


def test_two_cli_runs_of_the_same_user_never_overlap(
    replay_cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shub_pay.services.events import replay

    # The first run is still going: it has taken the lease and not released it yet.
    monkeypatch.setattr(replay, "release_lease", lambda engine, *, owner: None)
    assert replay_cli("events", "replay").exit_code == 0
    first_owner = _holder(engine)
    assert first_owner is not None and first_owner.startswith(f"{default_actor()}@")
    second = replay_cli("events", "replay", "--format", "json")
    assert second.exit_code == 5, second.stdout
    assert json.loads(second.stdout)["error"]["code"] == "replay_locked"
    assert _holder(engine) == first_owner


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
    acquire_lease(engine, owner="cron@other-host pid 1 run 0123abcd", now=datetime.now(UTC))
    assert replay_cli("events", "replay").exit_code == 5
