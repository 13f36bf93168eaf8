"""The convolutional encoder of Telari et al. (ACS Nano 2023): RDF -> a few latent CVs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def conv_lengths(n_bins: int, kernel_size: int, stride: int, blocks: int = 5) -> list[int]:
    """Signal length before and after each convolution block (padding kernel_size // 2)."""
    lengths = [n_bins]
    for _ in range(blocks):
        lengths.append((lengths[-1] + 2 * (kernel_size // 2) - kernel_size) // stride + 1)
    return lengths


#: Activations between convolutions. ReLU is the paper's; its kinks make the bias force
#: discontinuous in slope, so NVE energy errors do not shrink with the time step (see README):
#: for biasing MD prefer a smooth one.
ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "softplus": nn.Softplus}


def activation_layer(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


#: Output channels of the five convolution blocks (the paper's architecture).
DEFAULT_CHANNELS = (16, 32, 32, 64, 64)


class ConvEncoder(nn.Module):
    """Five (Conv1d, activation, BatchNorm1d) blocks, flatten, then a linear layer to ``n_cvs``.

    The activation is ReLU as in the paper unless ``activation`` says "silu" or "softplus".

    The input is a batch of raw RDFs ``[B, n_bins]``; the per-bin standardisation fitted on the
    training set is stored in the buffers ``input_mean`` and ``input_scale``, so the exported
    module takes raw RDFs, as the model contract requires.
    """

    def __init__(
        self,
        n_bins: int = 200,
        n_cvs: int = 3,
        channels: Sequence[int] = DEFAULT_CHANNELS,
        kernel_size: int = 5,
        stride: int = 2,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if n_cvs < 1:
            raise ValueError(f"n_cvs must be at least 1, got {n_cvs}")
        if len(channels) != 5:
            raise ValueError(f"the encoder has five convolution blocks; got {len(channels)} channel counts")
        self.input_mean: torch.Tensor
        self.input_scale: torch.Tensor
        self.register_buffer("input_mean", torch.zeros(n_bins))
        self.register_buffer("input_scale", torch.ones(n_bins))
        length = conv_lengths(n_bins, kernel_size, stride)[-1]
        if length < 1:
            raise ValueError(f"{n_bins} bins are too few for five convolutions of stride {stride}")
        blocks: list[nn.Module] = []
        in_channels = 1
        for out_channels in channels:
            blocks += [
                nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2),
                activation_layer(activation),
                nn.BatchNorm1d(out_channels),
            ]
            in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(in_channels * length, n_cvs)

    def set_input_scaling(self, rdfs: torch.Tensor) -> None:
        """Fit the per-bin standardisation on a training set of RDFs ``[B, n_bins]``."""
        mean = rdfs.mean(dim=0)
        scale = rdfs.std(dim=0)
        self.input_mean.copy_(mean)
        # Bins that barely vary over the training set (gaps between shells, beyond the largest
        # distance) carry no information, but dividing by their tiny spread would amplify noise
        # a millionfold and make the bias forces stiff: floor the scale at 1% of the largest.
        self.input_scale.copy_(scale.clamp_min(1e-2 * float(scale.max())))

    def standardize(self, g: torch.Tensor) -> torch.Tensor:
        """Raw RDFs -> the per-bin standardised input the convolutions see (and the decoder rebuilds)."""
        return (g - self.input_mean) / self.input_scale

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return self.linear(self.blocks(self.standardize(g).unsqueeze(1)).flatten(1))
