"""nanochart: autoencoder collective variables for metal nanoclusters, differentiable end to end.

The public API (docs/design.md): :func:`rdf`, :class:`CV`, :func:`export_model`, :func:`read_metadata`.
"""

import torch  # noqa: F401  (loads libtorch before the compiled core links against it)

from ._core import ModelError
from .core.cv import CV, AtomCountWarning
from .core.model_file import export_model, read_metadata
from .core.rdf import rdf, rdf_grid
from .core.version import __version__

__all__ = [
    "CV",
    "AtomCountWarning",
    "ModelError",
    "__version__",
    "export_model",
    "rdf",
    "rdf_grid",
    "read_metadata",
]
