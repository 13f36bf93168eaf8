"""The CI guard: with NANOCHART_REQUIRE_PLUMED=1 (`.ci/run`) a missing PLUMED plugin fails the
PLUMED tests instead of skipping them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent


def _collect(**env: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        str(TESTS / "plumed" / "test_examples.py"),
    ]
    return subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **env}, cwd=TESTS.parent
    )


def test_missing_plugin_fails_under_the_ci_guard_and_skips_otherwise(tmp_path) -> None:
    missing = str(tmp_path / "no" / "libnanochart_plumed.so")
    guarded = _collect(NANOCHART_REQUIRE_PLUMED="1", NANOCHART_PLUMED_PLUGIN=missing)
    output = guarded.stdout + guarded.stderr
    assert guarded.returncode != 0, output[-2000:]
    assert "NANOCHART_REQUIRE_PLUMED=1 but the PLUMED tests cannot run" in output
    relaxed = _collect(NANOCHART_REQUIRE_PLUMED="0", NANOCHART_PLUMED_PLUGIN=missing)
    assert relaxed.returncode == 0, (relaxed.stdout + relaxed.stderr)[-2000:]
    assert "skipped" in relaxed.stdout and "passed" not in relaxed.stdout
