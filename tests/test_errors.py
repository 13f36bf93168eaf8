"""Bad input gets a clear Python exception, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import nanochart
from conftest import RDF_SETTINGS, motif
from nanochart import _core
from nanochart.core.model_file import METADATA_FILE
from nanochart.core.rdf import RdfSettings
from nanochart.model.encoder import ConvEncoder


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_positions(cv, bad: float) -> None:
    x = motif("ico147")
    x[17, 1] = bad
    for call in (lambda: nanochart.rdf(x, **RDF_SETTINGS), lambda: cv.compute(x), lambda: cv.values(x[None])):
        with pytest.raises(ValueError, match="atom 17 has a NaN or infinite coordinate"):
            call()
    with pytest.raises(ValueError, match="structure 1 of the batch: atom 17"):
        cv.values(np.stack([motif("ico147"), x]))


@pytest.mark.parametrize(
    ("shape", "message"),
    [((147, 2), r"shape \(N, 3\), got \(147, 2\)"), ((441,), r"got \(441,\)"), ((1, 147, 3), "got")],
)
def test_wrong_position_shapes(cv, shape, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cv.compute(np.zeros(shape))
    with pytest.raises(ValueError, match=message):
        nanochart.rdf(np.zeros(shape), **RDF_SETTINGS)


def test_wrong_batch_and_bias_shapes(cv) -> None:
    with pytest.raises(ValueError, match=r"positions_batch must have shape \(B, N, 3\)"):
        cv.values(motif("ico147"))
    with pytest.raises(ValueError, match=r"dV_ds must have shape \(3,\)"):
        cv.forces(motif("ico147"), np.ones(2))
    with pytest.raises(ValueError, match="the batch is empty"):
        cv.values(np.zeros((0, 147, 3)))


def test_bad_boxes(cv) -> None:
    x = motif("ico147")
    with pytest.raises(ValueError, match=r"box must be None or a \(3, 3\) array"):
        cv.compute(x, np.ones(3))
    with pytest.raises(ValueError, match="do not span 3D space"):
        cv.compute(x, np.array([[10.0, 0, 0], [0, 10.0, 0], [10.0, 10.0, 0]]))
    with pytest.raises(ValueError, match="box contains NaN"):
        cv.compute(x, np.eye(3) * np.nan)


def test_too_few_atoms() -> None:
    with pytest.raises(ValueError, match="at least 2 atoms, got 1"):
        nanochart.rdf(np.zeros((1, 3)), **RDF_SETTINGS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sigma": 0.0}, "sigma > 0"),
        ({"sigma": -0.1}, "sigma > 0"),
        ({"r_max": 0.0}, "r_max > r_min"),
        ({"r_min": 5.0, "r_max": 5.0}, "r_max > r_min"),
        ({"n_bins": 1}, "n_bins >= 2"),
        ({"n_bins": 2.5}, "whole number"),
        ({"n_bins": 5, "sigma": 0.1}, "more than 20 sigma"),
    ],
)
def test_impossible_rdf_settings(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        nanochart.rdf(motif("ico55"), **{**RDF_SETTINGS, **change})


@pytest.mark.parametrize("cutoff_sigmas", [0.0, -1.0, 20.5, float("nan")])
def test_impossible_kernel_cutoff(cutoff_sigmas: float) -> None:
    with pytest.raises(ValueError, match="0 < cutoff_sigmas <= 20"):
        nanochart.rdf(motif("ico55"), **RDF_SETTINGS, cutoff_sigmas=cutoff_sigmas)


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="cannot open model file"):
        nanochart.CV(tmp_path / "nope.pt")


def test_corrupt_model_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.pt"
    path.write_bytes(b"this is not a zip archive" * 10)
    with pytest.raises(nanochart.ModelError, match="not a readable TorchScript file"):
        nanochart.CV(path)


def _save(module: torch.nn.Module, path: Path, metadata: dict | None) -> Path:
    extra = {} if metadata is None else {METADATA_FILE: json.dumps(metadata)}
    torch.jit.save(torch.jit.script(module.double().eval()), str(path), _extra_files=extra)
    return path


def _metadata(**change) -> dict:
    meta = {
        "format_version": 1,
        "rdf": dict(RDF_SETTINGS),
        "cv_names": ["cv1", "cv2", "cv3"],
        "elements": ["Au"],
        "n_atoms": 147,
    }
    meta.update(change)
    return meta


def test_torchscript_file_without_metadata(tmp_path: Path) -> None:
    path = _save(ConvEncoder(), tmp_path / "plain.pt", None)
    with pytest.raises(nanochart.ModelError, match=r"without nanochart\.json metadata"):
        nanochart.CV(path)
    with pytest.raises(ValueError, match=r"without nanochart\.json"):
        nanochart.read_metadata(path)


def test_metadata_n_bins_differs_from_the_module_input(tmp_path: Path) -> None:
    path = _save(ConvEncoder(n_bins=200), tmp_path / "m.pt", _metadata(rdf={**RDF_SETTINGS, "n_bins": 150}))
    with pytest.raises(nanochart.ModelError, match=r"input of shape \[2, 150\].*rdf.n_bins = 150"):
        nanochart.CV(path)


def test_output_width_differs_from_cv_names(tmp_path: Path) -> None:
    path = _save(ConvEncoder(n_cvs=2), tmp_path / "m.pt", _metadata())
    with pytest.raises(
        nanochart.ModelError, match=r"expected \[batch, 3\] \(one column per name in cv_names\)"
    ):
        nanochart.CV(path)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"format_version": 1}, 'lacks the required key "rdf"'),
        (_metadata(format_version=7), "format_version 7"),
        (_metadata(rdf={"r_min": 0.0, "r_max": 16.0, "sigma": 0.1}), 'lacks the required key "rdf.n_bins"'),
        (
            _metadata(rdf={**RDF_SETTINGS, "sigma": 0.0}),
            "impossible RDF settings: RDF smearing needs sigma > 0",
        ),
        (_metadata(rdf={**RDF_SETTINGS, "length_unit": "furlong"}), 'unknown length_unit "furlong"'),
        (_metadata(cv_names="cv1"), 'key "cv_names" must be an array'),
        (_metadata(n_atoms=14.5), 'key "n_atoms" must be a whole number'),
        (
            _metadata(novelty={"k": 2, "scale": 1.0, "threshold": 1.0, "reference_cvs": [[0.0, 0.0, 0.0]]}),
            "unusable novelty calibration: novelty: k must be between 1 and the 1 reference points",
        ),
        (
            _metadata(novelty={"k": 1, "scale": 1.0, "threshold": 1.0, "reference_cvs": [[0.0, 0.0]]}),
            r'"novelty.reference_cvs" must be a list of rows of 3 numbers',
        ),
    ],
)
def test_broken_metadata(tmp_path: Path, metadata: dict, message: str) -> None:
    path = _save(ConvEncoder(), tmp_path / "m.pt", metadata)
    with pytest.raises(nanochart.ModelError, match=message):
        nanochart.CV(path)


def test_metadata_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    torch.jit.save(
        torch.jit.script(ConvEncoder().double().eval()), str(path), _extra_files={METADATA_FILE: "{oops"}
    )
    with pytest.raises(nanochart.ModelError, match="is not valid JSON"):
        nanochart.CV(path)


class Detached(torch.nn.Module):
    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return g[:, :3].detach() * 2.0


def test_model_that_cannot_give_forces(tmp_path: Path) -> None:
    path = _save(Detached(), tmp_path / "m.pt", _metadata())
    with pytest.raises(nanochart.ModelError, match="does not depend differentiably on its input"):
        nanochart.CV(path)


@pytest.mark.parametrize("where", ["weight", "input_scale"])
def test_model_with_non_finite_values_is_refused(tmp_path: Path, where: str) -> None:
    # Once, a NaN from both libtorch and the core's evaluator passed their agreement check
    # as "matches libtorch to 0 relative", and the CVs were NaN in MD.
    encoder = ConvEncoder()
    with torch.no_grad():
        if where == "weight":
            next(encoder.parameters())[0, 0, 0] = float("nan")
        else:
            encoder.input_scale[5] = 0.0  # a zero standardisation scale: inf
    path = _save(encoder, tmp_path / "m.pt", _metadata())
    with pytest.raises(nanochart.ModelError, match="gives NaN or infinite CVs for a flat RDF"):
        nanochart.CV(path)


def test_atom_count_different_from_the_model_warns(cv) -> None:
    with pytest.warns(
        nanochart.AtomCountWarning, match="trained on clusters of 147 atoms; this structure has 55"
    ):
        values, _, _ = cv.compute(motif("ico55"))
    assert np.isfinite(values).all()
    with pytest.warns(nanochart.AtomCountWarning):
        cv.values(motif("ico55")[None])


def test_bad_thread_count(model_path: Path) -> None:
    with pytest.raises(ValueError, match="num_threads must be at least 1"):
        nanochart.CV(model_path, num_threads=0)


def test_rdf_settings_from_a_dict_name_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"RDF settings lack \['sigma'\]"):
        RdfSettings.from_dict({"r_min": 0.0, "r_max": 16.0, "n_bins": 200})
    with pytest.raises(ValueError, match=r"unknown RDF settings \['bins'\]"):
        RdfSettings.from_dict({**RDF_SETTINGS, "bins": 200})


def test_the_core_takes_only_rdf_settings() -> None:
    with pytest.raises(ValueError, match="settings must be a nanochart RdfSettings; this object lacks r_min"):
        _core.rdf(motif("ico55"), dict(RDF_SETTINGS), None)
