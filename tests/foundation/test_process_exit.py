"""The process's own entry point (`shub-pay`, `python -m shub_pay`) ends without the interpreter's
teardown and holds the cyclic collector back during start-up (issue 13): what a person sees —
the whole output, the exit code, what `atexit` had to do, a thread's last write — is the same
as with Python's ordinary exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session

from tests.conftest import Cli


def _shub_pay(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shub_pay", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def test_a_listing_written_to_a_file_arrives_whole_with_its_exit_code(
    imported_catalog: Session, db_url: str, tmp_path: Path
) -> None:
    # Support exports the users to a CSV through a pipe: every row of the in-process run is
    # there, in the same order, and the process says it succeeded.
    expected = Cli(db_url)("users", "list", "--format", "csv")
    assert expected.exit_code == 0, expected.stderr
    done = _shub_pay("--database-url", db_url, "users", "list", "--format", "csv", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == expected.stdout
    assert len(done.stdout.splitlines()) > 5


def test_a_refused_command_keeps_its_exit_code_and_message(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "shop.db"
    done = _shub_pay("--database-url", f"sqlite:///{missing}", "orders", "list", cwd=tmp_path)
    assert done.returncode == 3
    assert f"no database at {missing}" in done.stderr
    assert not missing.exists()
    typo = _shub_pay("ordrs", cwd=tmp_path)
    assert typo.returncode == 2
    assert "Did you mean 'orders'?" in typo.stderr


_EXITING = """
import atexit, pathlib, sys, threading, time
out = pathlib.Path(sys.argv[1])
atexit.register(lambda: (out / "atexit").write_text("ran"))
def late():
    time.sleep(0.3)
    (out / "thread").write_text("ran")
if sys.argv[2] == "thread":
    threading.Thread(target=late).start()
sys.argv = ["shub-pay", "--version"]
from shub_pay.cli.app import run
run()
"""


@pytest.mark.parametrize("with_thread", [False, True])
def test_what_atexit_and_a_running_thread_had_to_do_is_done(
    tmp_path: Path, with_thread: bool
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _EXITING, str(tmp_path), "thread" if with_thread else "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("shub-pay ")
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").exists() is with_thread
    if with_thread:  # joined, as Python's ordinary exit joins it
        assert (tmp_path / "thread").read_text() == "ran"


def test_the_collector_waits_during_start_up_and_runs_as_usual_after_its_first_collection() -> None:
    code = (
        "import gc, json\n"
        "from shub_pay.cli import app\n"
        "usual = gc.get_threshold()\n"
        "app._collect_late_during_start_up()\n"
        "held = gc.get_threshold()\n"
        "made = [[] for _ in range(app.START_UP_GC_THRESHOLD + 10_000)]\n"
        "print(json.dumps([usual, held, gc.get_threshold(), len(gc.callbacks)]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    usual, held, after, callbacks = json.loads(done.stdout)
    from shub_pay.cli.app import START_UP_GC_THRESHOLD

    assert held == [START_UP_GC_THRESHOLD, *usual[1:]]
    assert after == usual  # a long command collects exactly as Python does by default
    assert callbacks == 0


def test_a_profiled_command_still_writes_its_profile(tmp_path: Path) -> None:
    # An engineer profiles a slow command with `python -m cProfile`: the profiler writes its
    # report when the interpreter exits, so the fast exit steps aside while it is on.
    profile = tmp_path / "users.prof"
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "shub_pay", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: ")
    assert profile.stat().st_size > 0
