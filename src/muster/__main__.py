"""`python -m muster` runs the `muster` command."""

from muster.cli.main import app

app()
