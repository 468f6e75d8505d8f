"""`shub-pay sandbox serve`: the offline Stripe as a process, for the demo and your own code."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    help="The built-in offline Stripe (Connect, Checkout, refunds, events, webhooks)."
)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind; keep it on loopback.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (Stripe-mock's is 12111).")] = (
        12111
    ),
) -> None:
    """Serve the sandbox until Ctrl-C; point STRIPE_API_BASE at it with any sk_test_ key.

    It keeps its state in memory and speaks Stripe's wire format, so the stock `stripe` SDK
    works against it. Control routes under /_sandbox pay sessions, finish onboarding, open
    disputes, move the clock and inject faults (see the README).

    Example: shub-pay sandbox serve --port 12111
    """
    from shub_pay.cli.listen import listen_error
    from shub_pay.sandbox.server import Sandbox, serve_started

    sandbox = Sandbox(host, port)
    try:
        sandbox.start()
    except OSError as exc:  # bound before anything is announced
        raise listen_error(host, port, exc) from None
    serve_started(sandbox)
