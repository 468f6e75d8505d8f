"""Start-up of the command line: medians of cold runs, and their ratios to Python's own imports.

    .venv/bin/python bench/startup.py [--runs 9] [--db /tmp/shub_bench_startup/demo.db]

Targets (bench/README.md, "Start-up"): `shub-pay --help` ≤ 150 ms and within 1.3× of
`python -c "import typer"`; `orders show` on a small database ≤ 400 ms cold and within 1.3× of
`python -c "import typer, sqlmodel"`. The machine's speed drifts by up to 2× within minutes, so
the ratios are what one run can compare: every command is timed in the same rounds, one run of
each per round (round-robin), and the medians are taken over the rounds. CPU time (user +
system of the child) is printed beside the wall time: other jobs on the machine stretch the
wall time of a run far more than its CPU time.

"Cold" means a fresh interpreter per run (a subprocess: imports, settings, the database
connection and the migration gate all paid again), with the operating system's file cache warm
as it is for anyone who runs two commands in a row.

The small database is the demo's (fixture catalog, creators, ~35 paid orders with refunds and a
dispute, and their books: `shub-pay demo`, in-process sandbox), built once into `--db` and
reused. Commands run in an empty working directory (no `.env`), with the database and a test key
in the environment, and STRIPE_API_BASE at a closed port: none of them may call Stripe (`report
balance` is given a window that ended, so it compares nothing with Stripe's balance).

`--before DIR` times another version's commands in the same rounds: its own entry point
(`shub_pay.cli.app.run`, or `main` for versions before 2026-12-02, what its console script
called) through `python -c`, with PYTHONPATH=DIR.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
SHUB_PAY = str(BIN / "shub-pay")
# Another version's commands, as its console script runs them (`run` since 2026-12-02).
BEFORE_ENTRY = (
    "import sys\n"
    "from shub_pay.cli import app\n"
    "sys.argv[0] = 'shub-pay'\n"
    "sys.exit(getattr(app, 'run', app.main)())\n"
)


def build_database(path: Path) -> tuple[str, str, str, str]:
    """The demo's database at `path` (built if missing): one of its order numbers, a creator's
    email, the month of the books and the day their first entry was posted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        # A database built by an older tree is upgraded first (every command refuses one that
        # is behind the code's head); upgrading it is not timed.
        upgraded = subprocess.run(
            [SHUB_PAY, "--database-url", f"sqlite:///{path}", "db", "upgrade"],
            capture_output=True,
            text=True,
            check=False,
        )
        if upgraded.returncode != 0:
            sys.exit(f"db upgrade failed ({upgraded.returncode}):\n{upgraded.stderr}")
    else:
        started = time.perf_counter()
        done = subprocess.run(
            [SHUB_PAY, "--database-url", f"sqlite:///{path}", "demo"],
            cwd=path.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            sys.exit(f"the demo failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        print(f"built {path} with the demo in {time.perf_counter() - started:.1f} s")
    with sqlite3.connect(path) as con:
        count, number = con.execute(
            "SELECT count(*), max(order_number) FROM orders WHERE status != 'PENDING'"
        ).fetchone()
        (creator,) = con.execute(
            "SELECT min(u.email) FROM users u JOIN creator_accounts c ON c.user_id = u.id"
        ).fetchone()
        first, lines = con.execute(
            "SELECT min(e.effective_at), count(*) FROM journal_entries e "
            "JOIN journal_lines l ON l.entry_id = e.id"
        ).fetchone()
    print(
        f"database: {path}, {count} orders, {lines} journal lines; `orders show` looks up "
        f"{number}, `report statement` {creator}'s {first[:7]}"
    )
    return str(number), str(creator), first[:7], first[:10]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time_once(argv: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one run of `argv` in a fresh process."""
    cpu_before = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before
    if done.returncode != 0:
        sys.exit(f"{argv} exited {done.returncode}:\n{done.stderr.decode(errors='replace')}")
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="rounds (cold runs of each command)")
    parser.add_argument("--db", type=Path, default=Path("/tmp/shub_bench_startup/demo.db"))
    parser.add_argument(
        "--before",
        type=Path,
        help="a directory holding another version's shub_pay package (e.g. `git archive "
        "<commit> shub_pay | tar -x -C DIR`): its shub-pay commands are timed in the same "
        "rounds, run through this virtualenv with PYTHONPATH=DIR",
    )
    args = parser.parse_args()

    order_number, creator, month, first_day = build_database(args.db.resolve())
    # A window that ended a minute ago: `report balance` reads the books and asks Stripe nothing.
    until = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(time.time() - 60))
    workdir = args.db.resolve().parent / "cwd"
    workdir.mkdir(exist_ok=True)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "SHUB_", "DATABASE_"))
    }
    env |= {
        "DATABASE_URL": f"sqlite:///{args.db.resolve()}",
        "STRIPE_SECRET_KEY": "sk_test_bench_startup_not_a_real_key",
        "STRIPE_API_BASE": "http://127.0.0.1:9",  # closed: a command that calls Stripe fails
        "COLUMNS": "120",
    }
    # As installed, modules are compiled once: let the warm-up write the .pyc files.
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    py = sys.executable
    commands: dict[str, list[str]] = {
        'python -c "import typer"': [py, "-c", "import typer"],
        'python -c "import typer, sqlmodel"': [py, "-c", "import typer, sqlmodel"],
        # Typer's rich help renderer (markdown-it, pygments through rich.traceback): what
        # `--help` loaded until its help became Click's plain formatter (2026-12-02); kept to
        # show what that saves.
        'python -c "import typer.rich_utils"': [py, "-c", "import typer.rich_utils"],
        "shub-pay --help": [SHUB_PAY, "--help"],
        "shub-pay orders --help": [SHUB_PAY, "orders", "--help"],
        "shub-pay orders list": [SHUB_PAY, "orders", "list"],
        "shub-pay orders show": [SHUB_PAY, "orders", "show", order_number],
        "shub-pay config check": [SHUB_PAY, "config", "check"],
        "shub-pay report balance": [
            SHUB_PAY,
            "report",
            "balance",
            "--since",
            first_day,
            "--until",
            until,
        ],
        "shub-pay report statement": [
            SHUB_PAY,
            "report",
            "statement",
            "--creator",
            creator,
            "--month",
            month,
        ],
    }
    envs = dict.fromkeys(commands, env)
    if args.before is not None:
        before_env = env | {"PYTHONPATH": str(args.before.resolve())}
        for name in [n for n in commands if n.startswith("shub-pay")]:
            commands[f"{name} (before)"] = [py, "-c", BEFORE_ENTRY, *commands[name][1:]]
            envs[f"{name} (before)"] = before_env
    for name, argv in commands.items():  # one warm-up each: the file cache, .pyc files
        _time_once(argv, cwd=workdir, env=envs[name])
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, argv in commands.items():
            elapsed, used = _time_once(argv, cwd=workdir, env=envs[name])
            wall[name].append(elapsed)
            cpu[name].append(used)

    median = {name: statistics.median(values) for name, values in wall.items()}
    median_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    load = os.getloadavg()[0]
    print(
        f"\nmedians of {args.runs} cold runs, wall (min–max) and CPU, "
        f"Python {sys.version.split()[0]}, load average {load:.1f} at the end"
    )
    for name, value in median.items():
        low, high = min(wall[name]), max(wall[name])
        print(
            f"  {name:<45} {value * 1000:6.0f} ms ({low * 1000:4.0f}–{high * 1000:4.0f})"
            f"   CPU {median_cpu[name] * 1000:5.0f} ms"
        )
    print("\nratios, wall / CPU (target ≤ 1.3× wall)")
    for name, base_name in (
        ("shub-pay --help", 'python -c "import typer"'),
        ("shub-pay --help", 'python -c "import typer.rich_utils"'),
        ("shub-pay orders --help", 'python -c "import typer"'),
        ("shub-pay orders list", 'python -c "import typer, sqlmodel"'),
        ("shub-pay orders show", 'python -c "import typer, sqlmodel"'),
        ("shub-pay config check", 'python -c "import typer, sqlmodel"'),
        ("shub-pay report balance", 'python -c "import typer, sqlmodel"'),
        ("shub-pay report statement", 'python -c "import typer, sqlmodel"'),
    ):
        for label in (name, f"{name} (before)"):
            if label in median:
                print(
                    f"  {label:<45} {median[label] / median[base_name]:5.2f}× / "
                    f"{median_cpu[label] / median_cpu[base_name]:4.2f}× of `{base_name[11:-1]}`"
                )
    print("\nabsolute targets (wall)")
    for name, limit in (("shub-pay --help", 0.150), ("shub-pay orders show", 0.400)):
        verdict = "met" if median[name] <= limit else "not met"
        print(f"  {name:<45} {median[name] * 1000:7.0f} ms  ≤ {limit * 1000:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
