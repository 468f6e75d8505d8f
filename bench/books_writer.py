"""The two halves of `books sync` alone, without HTTP, the rate limit or the other processes.

    .venv/bin/python bench/books_writer.py record [--transactions 330000] [--dir DIR]
    .venv/bin/python bench/books_writer.py write [--dir DIR] [--runs 3]
    .venv/bin/python bench/books_writer.py prepare [--dir DIR] [--runs 3]

`record`: a sandbox (no latency, no limit) seeds `--transactions / 3` paid destination charges as
`bench/books.py sync` does; the platform's balance transactions are listed once, source
expanded, and kept in `DIR` as the pages Stripe sent (`pages.bin`) and as the listing child
hands them over, trimmed and prepared (`prepared.bin`), beside the local orders' database
(`orders.db`).

`write`: a fresh process copies `orders.db` and writes every prepared page through the writer
(`sync._Batches`, what `books sync` runs for each page the child sends), parsing each page's JSON
as it would from the pipe. `prepare`: a fresh process does what the listing child does to each
page once fetched — parse, trim the expanded source, prepare the rows (`rows.prepare_page`),
serialize for the pipe. Each prints its process's CPU time a transaction (median of `--runs`):
the per-process costs whose sum, on two cores, bounds `books sync` (bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from books import KEY, _orders_db, _seed_charges
from books_setup import REPO, in_child, peak_rss_mb, sandbox_process

_LEN = struct.Struct("<II")  # tag, length


def _write_frames(path: Path, frames: Iterator[tuple[int, bytes]]) -> int:
    count = 0
    with path.open("wb") as out:
        for tag, body in frames:
            out.write(_LEN.pack(tag, len(body)))
            out.write(body)
            count += 1
    return count


def _read_frames(path: Path) -> Iterator[tuple[int, bytes]]:
    data = path.read_bytes()
    at = 0
    while at < len(data):
        tag, size = _LEN.unpack_from(data, at)
        at += _LEN.size
        yield tag, data[at : at + size]
        at += size


def _record_child(url: str, folder: str, out: Any) -> None:
    sys.path.insert(0, str(REPO))
    import orjson

    from shub_pay.gateway import Gateway
    from shub_pay.gateway.listing import _kept
    from shub_pay.gateway.segments import ListTask, iter_windows, window_lister
    from shub_pay.services.books.rows import prepare_page
    from shub_pay.services.books.sync import SOURCE_KEYS

    gateway = Gateway(KEY, api_base=url, rate_limit_per_s=0)
    task = ListTask("balance_transactions", {"expand": ["data.source"]}, 0, tag=0)
    raw: list[tuple[int, bytes]] = []
    for _, page in iter_windows(window_lister(gateway), [task], workers=8):
        raw.append((0, orjson.dumps({"object": "list", "data": page, "has_more": False})))
    keep = {"source": SOURCE_KEYS}
    pages = _write_frames(Path(folder) / "pages.bin", iter(raw))

    def prepared() -> Iterator[tuple[int, bytes]]:
        for tag, body in raw:
            page = [_kept(item, keep) for item in orjson.loads(body)["data"]]
            yield tag, orjson.dumps(prepare_page("balance_transactions", page))

    _write_frames(Path(folder) / "prepared.bin", prepared())
    out.send({"pages": pages, "requests": gateway.api_requests})


def record(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    with sandbox_process(7, _seed_charges, args.transactions // 3, latency_ms=0, rate=0) as (
        info,
        _,
    ):
        _orders_db(folder / "orders.db", info["facts"])
        listed = in_child(_record_child, info["url"], str(folder))
    return {"platform_balance_transactions": info["platform_bts"], **listed}


def _write_child(folder: str, runs_dir: str, out: Any) -> None:
    sys.path.insert(0, str(REPO))
    import orjson

    from shub_pay.db import make_engine
    from shub_pay.services.books.sync import BooksSyncSummary, _Batches

    db = Path(runs_dir) / "books.db"
    shutil.copy(Path(folder) / "orders.db", db)
    frames = list(_read_frames(Path(folder) / "prepared.bin"))
    engine = make_engine(f"sqlite:///{db}")
    summary = BooksSyncSummary()
    batches = _Batches(engine, summary)
    wall, cpu = time.perf_counter(), time.process_time()
    for _, body in frames:
        batches.add("balance_transactions", "platform", orjson.loads(body))
    batches.flush()
    cpu_s = time.process_time() - cpu
    wall_s = time.perf_counter() - wall
    out.send(
        {
            "listed": summary.listed,
            "stored": summary.stored,
            "entries": summary.entries_posted,
            "cpu_s": cpu_s,
            "wall_s": wall_s,
            "peak_rss_mb": peak_rss_mb(),
        }
    )


def _prepare_child(folder: str, out: Any) -> None:
    sys.path.insert(0, str(REPO))
    import orjson

    from shub_pay.gateway.listing import _kept
    from shub_pay.services.books.rows import prepare_page
    from shub_pay.services.books.sync import SOURCE_KEYS

    frames = list(_read_frames(Path(folder) / "pages.bin"))
    keep = {"source": SOURCE_KEYS}
    listed = 0
    cpu = time.process_time()
    for _, body in frames:
        page = [_kept(item, keep) for item in orjson.loads(body)["data"]]
        listed += len(page)
        orjson.dumps(prepare_page("balance_transactions", page))
    out.send({"listed": listed, "cpu_s": time.process_time() - cpu})


def _runs(args: argparse.Namespace, target: Any, *extra: Any) -> dict[str, Any]:
    results = [in_child(target, args.dir, *extra) for _ in range(args.runs)]
    per_txn = [r["cpu_s"] / r["listed"] * 1e6 for r in results]
    return {
        "runs": [
            {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in results
        ],
        "cpu_us_per_transaction": [round(x, 1) for x in per_txn],
        "median_us": round(statistics.median(per_txn), 1),
    }


def write(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as runs_dir:
        return _runs(args, _write_child, runs_dir)


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    return _runs(args, _prepare_child)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record")
    rec.add_argument("--transactions", type=int, default=330_000)
    for name in ("record", "write", "prepare"):
        sub = rec if name == "record" else commands.add_parser(name)
        sub.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "shub_bench_writer"))
        if name != "record":
            sub.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    result = {"record": record, "write": write, "prepare": prepare}[args.command](args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
