"""`shub-pay webhooks serve | process`: Stripe's deliveries, over HTTP or from a saved file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shub_pay.cli.context import app_context
from shub_pay.cli.output import Format, FormatOption, render_mapping

app = typer.Typer(
    help="Receive Stripe webhooks: serve the endpoint, or process a saved payload.",
    no_args_is_help=True,
)


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 4242,
    path: Annotated[str, typer.Option(help="URL path Stripe posts to.")] = "/webhooks/stripe",
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (each with its own pool).")
    ] = 1,
) -> None:
    """Serve the webhook endpoint until interrupted (Ctrl-C finishes in-flight deliveries).

    Needs STRIPE_WEBHOOK_SECRET (several, comma-separated, during a rotation). Logs one line
    per delivery to stderr; `GET /healthz` answers when the database is reachable.

    Example: shub-pay webhooks serve --port 4242 --path /webhooks/stripe --workers 2
    """
    from shub_pay.cli.listen import listen_error
    from shub_pay.cli.output import note
    from shub_pay.settings import redact
    from shub_pay.webhooks.app import create_app
    from shub_pay.webhooks.server import listen
    from shub_pay.webhooks.server import serve as run

    context = app_context(ctx)
    settings = context.settings
    secrets = settings.require_webhook_secrets()
    if not path.startswith("/"):
        path = "/" + path
    engine = context.engine()
    app_ = create_app(settings, engine, path=path) if workers == 1 else None
    try:
        sock = listen(host, port)  # bound and listening before it is announced
    except OSError as exc:
        raise listen_error(host, port, exc) from None
    note(
        f"listening on http://{host}:{port}{path} ({workers} worker(s)); "
        f"secrets {', '.join(redact(s) for s in secrets)}"
    )
    run(settings, sock=sock, host=host, port=port, path=path, workers=workers, app=app_)


@app.command("process")
def process(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="Saved event JSON.")
    ],
    signature: Annotated[
        str | None,
        typer.Option(help="The delivery's Stripe-Signature header, to verify the file."),
    ] = None,
    trust_unsigned: Annotated[
        bool,
        typer.Option("--trust-unsigned", help="Process the file without a signature."),
    ] = False,
    tolerance: Annotated[
        int,
        typer.Option(min=0, help="Signature age accepted, in seconds; 0 skips the age check."),
    ] = 300,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Process a saved event through the same pipeline as the webhook endpoint.

    With --signature the file is verified against STRIPE_WEBHOOK_SECRET first; without one it
    needs --trust-unsigned. Exit 1 when the event's handler failed (it is stored as FAILED).

    Example: shub-pay webhooks process evt.json --trust-unsigned --format json
    """
    from shub_pay.domain.models import EventStatus, ReceivedVia
    from shub_pay.errors import UsageError
    from shub_pay.services.events.dispatcher import ingest
    from shub_pay.services.events.verify import parse_event, verify_signature

    context = app_context(ctx)
    payload = file.read_bytes()
    if signature:
        verify_signature(
            payload,
            signature,
            context.settings.require_webhook_secrets(),
            tolerance_s=tolerance if tolerance else 10**12,
        )
    elif not trust_unsigned:
        raise UsageError(
            "the file is not verified: give --signature HEADER or --trust-unsigned",
            code="signature_missing",
            hint="--trust-unsigned only for payloads you fetched from Stripe yourself",
        )
    event = parse_event(payload)
    outcome = ingest(
        context.engine(),
        event,
        received_via=ReceivedVia.CLI,
        livemode=context.settings.expected_livemode,
    )
    render_mapping(outcome.to_dict(), fmt=fmt, title="Event")
    if outcome.status is EventStatus.FAILED:
        raise typer.Exit(1)
