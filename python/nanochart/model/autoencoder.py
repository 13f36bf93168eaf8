"""The convolutional autoencoder of Telari et al. (ACS Nano 2023): encoder + mirrored decoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .encoder import DEFAULT_CHANNELS, ConvEncoder, activation_layer, conv_lengths


class ConvDecoder(nn.Module):
    """Linear layer, reshape, then five transposed-convolution blocks back to ``n_bins`` values.

    It mirrors :class:`ConvEncoder`: the same channels in reverse, and output paddings chosen so
    that every block restores the exact length the matching convolution consumed. The first four
    blocks are (ConvTranspose1d, activation, BatchNorm1d); the last is a bare ConvTranspose1d to one
    channel, so the output can take any sign (it rebuilds standardised RDFs).
    """

    def __init__(
        self,
        n_bins: int,
        n_cvs: int,
        channels: Sequence[int],
        kernel_size: int,
        stride: int,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        lengths = conv_lengths(n_bins, kernel_size, stride, len(channels))
        self.first_shape = (channels[-1], lengths[-1])
        self.linear = nn.Linear(n_cvs, channels[-1] * lengths[-1])
        widths = [1, *channels]
        padding = kernel_size // 2
        blocks: list[nn.Module] = []
        for level in range(len(channels), 0, -1):
            produced = (lengths[level] - 1) * stride - 2 * padding + kernel_size
            conv = nn.ConvTranspose1d(
                widths[level],
                widths[level - 1],
                kernel_size,
                stride=stride,
                padding=padding,
                output_padding=lengths[level - 1] - produced,
            )
            blocks.append(conv)
            if level > 1:
                blocks += [activation_layer(activation), nn.BatchNorm1d(widths[level - 1])]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.linear(z).view(z.shape[0], *self.first_shape)
        return self.blocks(x).squeeze(1)


class ConvAutoencoder(nn.Module):
    """Encoder to ``n_cvs`` latent coordinates and decoder back to the standardised RDF."""

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
        self.encoder = ConvEncoder(n_bins, n_cvs, channels, kernel_size, stride, activation)
        self.decoder = ConvDecoder(n_bins, n_cvs, channels, kernel_size, stride, activation)

    def forward(self, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (latent CVs, reconstruction of ``encoder.standardize(g)``)."""
        z = self.encoder(g)
        return z, self.decoder(z)
