"""The installed nanochart's version, read from its package metadata: pyproject.toml is the one
place it is written. Here, in the lowest layer, so that model files and the RDF cache can record it
without importing the package's top."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nanochart")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
