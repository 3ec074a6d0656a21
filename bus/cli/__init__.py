"""The command line (typer): ``run_bus.py`` and the installed ``bus`` command share ``app``."""
