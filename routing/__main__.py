"""`python -m routing` is the `routing` command."""

from routing.cli import main

main(prog_name="routing")
