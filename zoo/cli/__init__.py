"""The `emozoo` command line."""

from zoo.cli.main import main

__all__ = ["main"]
