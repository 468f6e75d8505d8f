"""Running `shub-pay` the way a person does: in a pseudo-terminal of a given width.

CliRunner's stdout is a pipe, so what a person sees at an 80-column terminal (Rich tables,
help) needs a real terminal: a child process on a pty whose window size is set, its output read
back with the colour codes removed.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from dataclasses import dataclass

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@dataclass(frozen=True)
class Screen:
    exit_code: int
    text: str

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def run_in_terminal(
    *args: str, columns: int = 80, env: dict[str, str] | None = None, timeout: float = 60
) -> Screen:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    child_env = {
        **{k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS", "LINES")},
        "COLUMNS": str(columns),
        "NO_COLOR": "1",
        "TERM": "xterm",
        **(env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "shub_pay", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=child_env,
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    code = process.wait(timeout=timeout)
    text = _ANSI.sub("", b"".join(chunks).decode("utf-8", "replace")).replace("\r\n", "\n")
    return Screen(code, text)
