"""`python -m insights.cli ARGS`: the same as the `insights` console script."""

from insights.cli import main

main()
