from shub_pay.cli.app import run

run()
