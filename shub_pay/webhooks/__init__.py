"""The HTTP face of the event pipeline: an ASGI app (`app.create_app`) and how to run it
(`server.serve` for `webhooks serve`, `server.BackgroundServer` for tests and the demo)."""
