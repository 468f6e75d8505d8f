"""What `sandbox serve` and `webhooks serve` say when they cannot listen (exit 3).

The address is bound before anything is announced, so "listening on …" is only ever printed
for a socket that is listening; a port another process holds, a privileged port or an address
that is not this machine's is a configuration error naming the address, with a hint.
"""

from __future__ import annotations

import errno
import socket

from shub_pay.errors import ConfigError


def listen_error(host: str, port: int, exc: OSError) -> ConfigError:
    """The one-line error (and hint) for a failed bind of ``host:port``."""
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(
            f"cannot listen on {where}: port {port} is already in use",
            code="port_in_use",
            hint=(
                f"another process listens on port {port} (an earlier serve still running?): "
                "stop it, or choose another port with --port"
            ),
        )
    if exc.errno == errno.EACCES:
        return ConfigError(
            f"cannot listen on {where}: permission denied",
            code="port_forbidden",
            hint="ports below 1024 need privileges: choose --port 1024 or above",
        )
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return ConfigError(
            f"cannot listen on {where}: {host} is not an address of this machine",
            code="address_unavailable",
            hint="--host 127.0.0.1 (this machine only), or one of its own addresses",
        )
    return ConfigError(
        f"cannot listen on {where}: {exc.strerror or exc}",
        code="cannot_listen",
        hint="check --host and --port",
    )
