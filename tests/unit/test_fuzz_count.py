"""`fuzz_cases` in `make chaos` counts the examples the properties ran, one per example."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_fuzz_cases_counts_generated_examples() -> None:
    # A process of its own: the examples per property are read when the module is imported.
    code = "from pipeline.tools.chaos.__main__ import fuzz_cases; print(fuzz_cases(25))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) == 4 * 25  # four properties, 25 examples each
