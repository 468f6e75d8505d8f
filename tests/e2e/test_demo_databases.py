"""`shub-pay demo` on a database that is not new, and `demo --keep` telling another shell how to
use what it left running: an absolute database path and a command that runs."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import Session

from shub_pay.cli.demo import shub_pay_command
from tests.conftest import REPO, Cli


def test_the_demo_refuses_a_used_database_and_says_how_to_run_it(
    imported_catalog: Session, db_url: str
) -> None:
    result = Cli(db_url)("demo")
    assert result.exit_code == 5, result.stdout[-2000:]
    assert "the demo needs an empty database" in result.stderr
    assert "already holds users" in result.stderr
    assert "No such account" not in result.stdout + result.stderr
    assert "run `shub-pay demo` without --database-url" in result.stderr
    assert "--database-url sqlite:///demo_new.db demo" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_the_demo_takes_a_new_file_named_by_database_url(tmp_path: Path) -> None:
    target = tmp_path / "fresh" / "demo.db"
    target.parent.mkdir()
    result = Cli(f"sqlite:///{target}")("demo")
    assert result.exit_code == 0, result.stdout[-2000:]
    assert f"sqlite:///{target}" in result.stdout.replace("\n", "")  # absolute, whole
    # A second run on it: now used, refused before anything starts.
    again = Cli(f"sqlite:///{target}")("demo")
    assert again.exit_code == 5 and "the demo needs an empty database" in again.stderr


@pytest.mark.parametrize(
    ("argv0", "on_path", "expected"),
    [
        ("/srv/app/.venv/bin/shub-pay", None, "/srv/app/.venv/bin/shub-pay"),
        (".venv/bin/shub-pay", None, "{cwd}/.venv/bin/shub-pay"),
        ("shub-pay", "{cwd}/shub-pay", "shub-pay"),
        ("/srv/app/.venv/bin/shub-pay", "/usr/bin/shub-pay", "/srv/app/.venv/bin/shub-pay"),
        ("/srv/app/shub_pay/__main__.py", None, "/usr/bin/python3.11 -m shub_pay"),
    ],
)
def test_the_command_to_run_again_is_the_one_that_ran(
    tmp_path: Path, argv0: str, on_path: str | None, expected: str
) -> None:
    cwd = str(Path.cwd())
    found = on_path.format(cwd=cwd) if on_path else None
    command = shub_pay_command(argv0, "/usr/bin/python3.11", which=lambda _name: found)
    assert command == expected.format(cwd=cwd)


def _run_keep(command: list[str], cwd: Path) -> tuple[list[str], dict[str, str], str]:
    """Start `demo --keep`, read until it says how to use it; → its lines, the exported
    variables and the printed command (the demo still running)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "COLUMNS")}
    process = subprocess.Popen(
        [*command, "demo", "--keep"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, "COLUMNS": "80"},
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if "Ctrl-C to stop" in line or time.monotonic() > deadline:
                break
        exported = {
            name: shlex.split(value)[0]
            for name, _, value in (
                line.strip().removeprefix("export ").partition("=")
                for line in lines
                if line.strip().startswith("export ")
            )
        }
        printed = next(line.strip() for line in lines if line.strip().endswith(" orders list"))
        listed = subprocess.run(
            shlex.split(printed),
            cwd="/",  # another shell, somewhere else
            env={**env, **exported},
            capture_output=True,
            text=True,
            timeout=120,
        )
        return lines, exported, f"{printed}\n{listed.returncode}\n{listed.stdout}{listed.stderr}"
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)


@pytest.mark.parametrize("how", ["script", "module"])
def test_keep_prints_an_absolute_database_and_a_command_that_works(
    tmp_path: Path, how: str
) -> None:
    script = Path(sys.executable).parent / "shub-pay"
    command = [str(script)] if how == "script" else [sys.executable, "-m", "shub_pay"]
    if how == "script" and not script.exists():
        pytest.skip(f"no {script}: shub-pay is not installed as a script next to {sys.executable}")
    lines, exported, listed = _run_keep(command, tmp_path)
    assert exported["DATABASE_URL"] == f"sqlite:///{tmp_path / 'shub_pay_demo.db'}"
    assert exported["STRIPE_API_BASE"].startswith("http://127.0.0.1:")
    printed, code, output = listed.split("\n", 2)
    expected = str(script) if how == "script" else f"{sys.executable} -m shub_pay"
    assert printed == f"{shlex.join(shlex.split(expected))} orders list"
    assert code == "0", output  # run from / with only the printed variables: it works
    assert "SH-" in output and "orders shown" in output
    assert str(REPO) not in exported["DATABASE_URL"]
    assert f"database sqlite:///{tmp_path / 'shub_pay_demo.db'}" in "".join(lines)
