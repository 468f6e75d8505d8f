"""`python -m shub_pay.sandbox [--host H] [--port P]`: serve the sandbox until Ctrl-C."""

from __future__ import annotations

import argparse

from .server import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m shub_pay.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    args = parser.parse_args()
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
