"""What `bench/books.py` and `bench/month_close.py` share: a migrated SQLite file, SQL timestamps,
the per-day summaries of a journal generated in SQL, a sandbox serving from its own process, and
one `shub-pay` command measured in a child process (its own CPU time and peak RSS, from
`wait4`, so neither this process nor an earlier child counts).

Not a benchmark itself: imported by the two scripts (run from the repository root, so `bench/`
is on the path).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def peak_rss_mb() -> float:
    """This process's peak resident memory (`VmHWM`), MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def migrated(path: Path) -> None:
    """A fresh SQLite file at `path`, at the migrations' head."""
    sys.path.insert(0, str(REPO))
    from shub_pay.db import make_engine, upgrade

    if path.exists():
        path.unlink()
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()


def ts(unix_sql: str) -> str:
    """SQL turning a unix-seconds expression into SQLite's stored UTC timestamp text."""
    return f"strftime('%Y-%m-%d %H:%M:%S.000000', {unix_sql}, 'unixepoch')"


def summarize(path: Path) -> float:
    """Rebuild the per-day summaries of a journal written in SQL (what `books sync` keeps as it
    posts), through the package's own `books summarize`; returns the seconds it took."""
    sys.path.insert(0, str(REPO))
    from shub_pay.db import make_engine
    from shub_pay.services.books.summary import summarize as rebuild

    engine = make_engine(f"sqlite:///{path}")
    started = time.perf_counter()
    rebuild(engine)
    engine.dispose()
    return time.perf_counter() - started


def _serve(
    conn: Any, seed: int, prepare: Callable[..., dict[str, Any]], args: tuple[Any, ...]
) -> None:
    sys.path.insert(0, str(REPO))
    from shub_pay.sandbox import Sandbox

    latency_ms, rate, *rest = args
    sandbox = Sandbox(seed=seed)
    sandbox.start()
    started = time.perf_counter()
    info = prepare(sandbox, *rest)
    info["seed_s"] = time.perf_counter() - started
    sandbox.set_faults(latency_ms=latency_ms, rate_limit_per_s=rate)
    conn.send({"url": sandbox.url, **info})
    conn.recv()  # until the parent is done
    conn.send(sandbox.stats())
    sandbox.stop()


@contextmanager
def sandbox_process(
    seed: int,
    prepare: Callable[..., dict[str, Any]],
    *args: Any,
    latency_ms: int,
    rate: int,
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """A sandbox in its own process: `prepare(sandbox, *args)` seeds it (a module-level
    function, for `spawn`) and returns what the parent needs; then it answers with `latency_ms`
    per request and a `rate` requests/s limit. Yields (prepare's answer with `url`, `seed_s`
    and `server_pid`, the sandbox's request stats, filled when the block ends)."""
    context = mp.get_context("spawn")
    here, there = context.Pipe()
    server = context.Process(target=_serve, args=(there, seed, prepare, (latency_ms, rate, *args)))
    server.start()
    stats: dict[str, Any] = {}
    try:
        info = here.recv()
        info["server_pid"] = server.pid  # for the benches that read the sandbox's own CPU
        yield info, stats
    finally:
        here.send("done")
        stats.update(here.recv())
        server.join()


def in_child(target: Callable[..., None], *args: Any) -> Any:
    """Run `target(*args, out)` in a fresh spawned process; return what it sent on `out`."""
    context = mp.get_context("spawn")
    mine, theirs = context.Pipe()
    child = context.Process(target=target, args=(*args, theirs))
    child.start()
    result = mine.recv()
    child.join()
    return result


def run_shub(db: Path, *argv: str) -> dict[str, Any]:
    """`shub-pay --database-url sqlite:///db ARGV` in a fresh process: wall time, its own CPU
    (user + sys) and peak RSS (`wait4` on that process alone), and how many lines it printed."""
    shub = str(Path(sys.executable).parent / "shub-pay")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        wall = time.perf_counter()
        process = subprocess.Popen(
            [shub, "--database-url", f"sqlite:///{db}", *argv], stdout=out, stderr=err
        )
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - wall
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode:
            raise RuntimeError(
                f"shub-pay {' '.join(argv)} exited {process.returncode}: {err.read()}"
            )
        lines = len(out.read().splitlines())
    return {
        "wall_s": round(elapsed, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "out_lines": lines,
    }
