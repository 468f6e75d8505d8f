from shub_pay.cli.app import main

main()
