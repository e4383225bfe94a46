"""`python -m companion.cli`: the `kiai` command without its entry point (a source checkout)."""

from companion.cli import main

main()
