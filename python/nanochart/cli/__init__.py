"""The command line, `nanochart VERB`: each verb parses its arguments and calls the library."""

from .main import main

__all__ = ["main"]
