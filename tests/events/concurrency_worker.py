"""Run in a separate process by the concurrency tests: deliver events to one database."""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    from shub_pay.db import make_engine
    from shub_pay.services.events.dispatcher import ingest

    url, path, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with open(path, encoding="utf-8") as fh:
        events = json.load(fh)
    engine = make_engine(url)
    engine.connect().close()
    time.sleep(max(0.0, start_at - time.time()))
    statuses = [str(ingest(engine, e).status) for e in events]
    engine.dispose()
    print(json.dumps(statuses))


if __name__ == "__main__":
    main()
