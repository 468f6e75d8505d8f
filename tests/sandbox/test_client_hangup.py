"""A client that hangs up while the sandbox answers (Ctrl-C on a command) is not a sandbox
error: no BrokenPipeError traceback on the console of `shub-pay sandbox serve`; a real
error in a handler still is reported."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shub_pay.sandbox.state import SandboxState
from shub_pay.sandbox.transport import SandboxHTTPServer


@pytest.fixture
def server() -> Iterator[SandboxHTTPServer]:
    from shub_pay.sandbox import Sandbox

    sandbox = Sandbox(seed=3)
    httpd = SandboxHTTPServer(("127.0.0.1", 0), sandbox.state)
    yield httpd
    httpd.server_close()


def _fail_with(server: SandboxHTTPServer, error: BaseException) -> None:
    try:
        raise error
    except BaseException:
        server.handle_error(None, ("127.0.0.1", 50000))


def test_a_client_hanging_up_prints_nothing(
    server: SandboxHTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for error in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")):
        _fail_with(server, error)
    assert capsys.readouterr().err == ""


def test_a_real_handler_error_is_still_reported(
    server: SandboxHTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _fail_with(server, KeyError("boom"))
    assert "KeyError" in capsys.readouterr().err
    assert isinstance(server.state, SandboxState)
