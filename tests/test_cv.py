"""The Python API of nanochart.CV: batches, threads, metadata, and agreement with the eager model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nanochart
from conftest import RDF_SETTINGS, motif
from nanochart.model.encoder import ConvEncoder


@pytest.fixture
def batch(rng: np.random.Generator) -> np.ndarray:
    return np.stack([motif("ico147") + 0.1 * rng.normal(size=(147, 3)) for _ in range(6)])


def test_batched_values_equal_single_structure_values(cv, batch) -> None:
    values = cv.values(batch)
    assert values.shape == (6, 3) and values.dtype == np.float64
    single = np.array([cv.compute(x)[0] for x in batch])
    np.testing.assert_allclose(values, single, rtol=0, atol=1e-12 * np.abs(single).max())
    box = np.eye(3) * 40.0
    np.testing.assert_allclose(cv.values(batch, box), values, rtol=0, atol=1e-12 * np.abs(values).max())


def test_thread_count_changes_nothing_but_speed(model_path, batch) -> None:
    torch.set_num_threads(2)
    one, two = nanochart.CV(model_path, num_threads=1), nanochart.CV(model_path, num_threads=2)
    for a, b in zip(one.compute(batch[0]), two.compute(batch[0]), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(a).max())
    np.testing.assert_allclose(one.values(batch), two.values(batch), rtol=0, atol=1e-12)
    # The RDF's pairs and the encoder's larger convolutions are cut into chunks whatever the thread
    # count, so the forces are the same bit for bit.
    three = nanochart.CV(model_path, num_threads=3)
    dV_ds = np.array([1.0, -0.5, 0.25])
    (f1, v1), (f2, v2), (f3, v3) = (cv.forces(batch[0], dV_ds) for cv in (one, two, three))
    for forces, virial in ((f2, v2), (f3, v3)):
        np.testing.assert_array_equal(forces, f1)
        np.testing.assert_array_equal(virial, v1)
    # The caller's torch thread setting is put back.
    assert torch.get_num_threads() == 2


def test_works_inside_torch_no_grad(cv, batch) -> None:
    reference = cv.forces(batch[0], np.ones(3))
    with torch.no_grad():
        forces, _ = cv.forces(batch[0], np.ones(3))
    with torch.inference_mode():
        _, jacobian, _ = cv.compute(batch[0])
    np.testing.assert_array_equal(forces, reference[0])
    assert np.abs(jacobian).max() > 0


def test_eager_module_torchscript_file_and_core_agree(tmp_path, batch) -> None:
    torch.manual_seed(3)
    encoder = ConvEncoder(n_cvs=2).double()
    rdfs = torch.tensor(np.array([nanochart.rdf(x, **RDF_SETTINGS) for x in batch]))
    encoder.set_input_scaling(rdfs)
    encoder.train()
    encoder(rdfs)  # batch-norm statistics
    path = nanochart.export_model(
        encoder, tmp_path / "m.pt", rdf=RDF_SETTINGS, elements=["Au"], n_atoms=147, cv_names=["ico_dh", "fcc"]
    )
    with torch.no_grad():
        eager = encoder.eval()(rdfs).numpy()
        reloaded = torch.jit.load(str(path))(rdfs).numpy()
    core = nanochart.CV(path).values(batch)
    np.testing.assert_allclose(reloaded, eager, rtol=0, atol=1e-10)
    np.testing.assert_allclose(core, eager, rtol=0, atol=1e-10)


def test_metadata_travels_inside_the_file(tmp_path) -> None:
    path = nanochart.export_model(
        ConvEncoder(n_cvs=4),
        tmp_path / "m.pt",
        rdf=RDF_SETTINGS,
        elements=["Ag"],
        n_atoms=55,
        training={"validation_loss": 0.01},
    )
    meta = nanochart.read_metadata(path)
    cv = nanochart.CV(path)
    assert cv.metadata == meta
    assert cv.cv_names == ["cv1", "cv2", "cv3", "cv4"] and cv.n_cvs == 4 and cv.n_atoms == 55
    assert meta["rdf"] == {**RDF_SETTINGS, "cutoff_sigmas": 6.0, "length_unit": "angstrom"}
    assert meta["elements"] == ["Ag"] and meta["training"] == {"validation_loss": 0.01}
    assert meta["torch_version"] == torch.__version__ and meta["nanochart_version"] == nanochart.__version__
    assert "cv_names=['cv1', 'cv2', 'cv3', 'cv4']" in repr(cv)


def test_cutoff_setting_of_the_model_is_used(tmp_path) -> None:
    x = motif("ico147")
    encoder = ConvEncoder()  # the same weights in both files: only the cutoff differs
    short = nanochart.export_model(
        encoder, tmp_path / "a.pt", rdf={**RDF_SETTINGS, "cutoff_sigmas": 2.0}, elements=["Au"], n_atoms=147
    )
    default = nanochart.export_model(
        encoder, tmp_path / "b.pt", rdf=RDF_SETTINGS, elements=["Au"], n_atoms=147
    )
    assert nanochart.CV(short).rdf_settings.cutoff_sigmas == 2.0
    g_short = nanochart.rdf(x, **RDF_SETTINGS, cutoff_sigmas=2.0)
    with torch.no_grad():
        expected = encoder.double().eval()(torch.tensor(g_short)[None]).numpy()
    np.testing.assert_allclose(nanochart.CV(short).values(x[None]), expected, rtol=0, atol=1e-10)
    assert np.abs(nanochart.CV(default).values(x[None]) - expected).max() > 1e-6
