"""Run `shub-pay` in a fresh interpreter and report which modules it imported.

Start-up is tested by what a command loads, never by how long it takes (speed is
bench/startup.py's job): a heavy package that `--help` or a lookup imports is a regression
whatever this machine's speed that day.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# What a command must not pay for unless it uses it: the ORM and its database drivers, the
# migration tool, the Stripe SDK, the webhook server.
HEAVY = ("sqlalchemy", "sqlmodel", "alembic", "stripe", "uvicorn", "starlette", "psycopg")

_RUNNER = """
import json, sys
argv, report = json.loads(sys.argv[1]), sys.argv[2]
sys.argv = ["shub-pay", *argv]
from shub_pay.cli.app import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
with open(report, "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
sys.exit(code)
"""


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str
    modules: frozenset[str]

    def loaded(self, *packages: str) -> list[str]:
        """Which of `packages` (or any of their submodules) the command imported."""
        return [p for p in packages if any(m == p or m.startswith(p + ".") for m in self.modules)]


def run_shub_pay(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "modules.json"
        done = subprocess.run(
            [sys.executable, "-c", _RUNNER, json.dumps(list(args)), str(report)],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "100", **(env or {})},
            cwd=cwd,
            check=False,
        )
        assert report.exists(), done.stderr[-2000:]
        result = json.loads(report.read_text())
    return Run(done.returncode, done.stdout, done.stderr, frozenset(result["modules"]))
