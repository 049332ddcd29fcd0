"""`python -m bench` runs the command line."""

from bench.entry import main

main()
