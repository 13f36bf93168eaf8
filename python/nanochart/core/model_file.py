"""Export an encoder as a TorchScript file with its ``nanochart.json`` metadata inside."""

from __future__ import annotations

import json
import os
import re
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from .novelty import NoveltyReference
from .rdf import RdfSettings

FORMAT_VERSION = 1
METADATA_FILE = "nanochart.json"


def export_model(
    module: torch.nn.Module,
    path: str | os.PathLike[str],
    *,
    rdf: RdfSettings | Mapping[str, Any],
    elements: Sequence[str],
    n_atoms: int,
    cv_names: Sequence[str] | None = None,
    training: dict[str, Any] | None = None,
    novelty: NoveltyReference | None = None,
) -> Path:
    """Script ``module`` (float64, eval mode) and save it with its metadata to ``path``.

    ``module.forward`` must map a float64 batch ``[B, n_bins]`` of raw RDFs to ``[B, D]`` CVs,
    with any input scaling inside. ``rdf`` is the :class:`RdfSettings` of the model's input (or
    its dict: r_min, r_max, n_bins, sigma, optionally cutoff_sigmas and length_unit). ``novelty``
    (see :mod:`nanochart.core.novelty`) makes off-chart warnings available. The file is loaded back
    through the C++ core before this returns, so a model that breaks the contract fails here.
    """
    from .cv import CV
    from .version import __version__

    settings = rdf if isinstance(rdf, RdfSettings) else RdfSettings.from_dict(rdf)
    module = module.double().eval()
    with torch.no_grad():
        width = module(torch.zeros(2, settings.n_bins, dtype=torch.float64)).shape[-1]
    names = list(cv_names) if cv_names is not None else [f"cv{i + 1}" for i in range(width)]
    metadata: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "rdf": settings.as_dict(),
        "cv_names": names,
        "elements": list(elements),
        "n_atoms": int(n_atoms),
        "torch_version": torch.__version__,
        "nanochart_version": __version__,
    }
    if training is not None:
        metadata["training"] = training
    if novelty is not None:
        metadata["novelty"] = novelty.as_dict()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _no_torchscript_deprecation():
        _save(torch.jit.script(module), path, metadata)
    CV(path)  # refuses, with the reason, a module that breaks the contract
    return path


def add_novelty(
    path: str | os.PathLike[str], novelty: NoveltyReference, out: str | os.PathLike[str] | None = None
) -> Path:
    """Write the model at ``path`` again (to ``out``, default ``path`` itself) with ``novelty`` in
    its metadata, replacing any there; the module and every other key are kept as they are."""
    from .cv import CV

    metadata = read_metadata(path)
    if len(metadata["cv_names"]) != novelty.reference_cvs.shape[1]:
        raise ValueError(
            f"the novelty reference has {novelty.reference_cvs.shape[1]} CVs, the model "
            f"{len(metadata['cv_names'])}: calibrate with this model's chart"
        )
    metadata["novelty"] = novelty.as_dict()
    with _no_torchscript_deprecation():
        module = torch.jit.load(str(path), map_location="cpu")
        target = Path(out) if out is not None else Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        _save(module, target, metadata)
    CV(target)  # the core reads the new metadata back, or says what is wrong with it
    return target


@contextmanager
def _no_torchscript_deprecation() -> Iterator[None]:
    # TorchScript is deprecated in torch >= 2.10 but is what libtorch's C++ API (and so PLUMED)
    # loads; it stays the model format until libtorch offers a successor.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning
        )
        yield


def _save(module: torch.jit.ScriptModule, path: Path, metadata: dict[str, Any]) -> None:
    # Lists of numbers on one line each (a novelty reference has thousands of rows); in the
    # indented text such a list, and only such a list, opens with "[" and a real newline.
    text = re.sub(
        r"\[\n[-+0-9.eE,\s]*\]", lambda m: re.sub(r"\s+", "", m.group(0)), json.dumps(metadata, indent=1)
    )
    torch.jit.save(module, str(path), _extra_files={METADATA_FILE: text})


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``nanochart.json`` metadata of an exported model, read without loading the module."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(f"/extra/{METADATA_FILE}")]
            if not names:
                raise ValueError(f"{path} is a TorchScript file without {METADATA_FILE} metadata")
            return json.loads(archive.read(names[0]))
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path} is not a TorchScript file ({error})") from error
