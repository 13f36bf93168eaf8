"""A pure-torch RDF: the independent autograd reference for the C++ core, and the benchmark baseline.

It evaluates every Gaussian on every bin (no truncation) from dense pair tensors, so it shares no
code and no algorithm with the core beyond the definition in docs/design.md.
"""

from __future__ import annotations

import itertools
import math

import torch


def pair_vectors(positions: torch.Tensor, box: torch.Tensor | None = None) -> torch.Tensor:
    """Vectors x_j - x_i for all i < j, shortest periodic image when a box (rows = cell vectors) is given."""
    n = positions.shape[0]
    i, j = torch.triu_indices(n, n, offset=1)
    d = positions[j] - positions[i]
    if box is None:
        return d
    fractional = d @ torch.linalg.inv(box)
    d = (fractional - torch.round(fractional)) @ box
    shifts = torch.tensor(list(itertools.product((-1, 0, 1), repeat=3)), dtype=box.dtype) @ box
    candidates = d[:, None, :] + shifts[None, :, :]
    best = (candidates * candidates).sum(-1).argmin(dim=1)
    return candidates[torch.arange(d.shape[0]), best]


def torch_rdf(
    positions: torch.Tensor,
    *,
    r_min: float,
    r_max: float,
    n_bins: int,
    sigma: float,
    box: torch.Tensor | None = None,
) -> torch.Tensor:
    """Untruncated Gaussian-smeared RDF, differentiable with respect to positions and box."""
    d = pair_vectors(positions, box)
    r = torch.sqrt((d * d).sum(-1))
    grid = torch.linspace(r_min, r_max, n_bins, dtype=positions.dtype)
    kernels = torch.exp(-0.5 * ((grid[None, :] - r[:, None]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    return kernels.mean(dim=0)


def torch_cv(
    encoder: torch.nn.Module, positions: torch.Tensor, rdf_settings: dict, box: torch.Tensor | None = None
) -> torch.Tensor:
    """CVs (D,) of one structure through the pure-torch RDF and an encoder module."""
    settings = {k: rdf_settings[k] for k in ("r_min", "r_max", "n_bins", "sigma")}
    return encoder(torch_rdf(positions, box=box, **settings)[None, :])[0]
