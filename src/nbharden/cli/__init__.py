"""The ``nbharden`` command line: a thin Typer layer over ``nbharden.api`` (entry: ``app.main``)."""
