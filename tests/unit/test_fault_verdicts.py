"""A fault scenario's verdict must say why a process died: in CI its logs leave with the machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipeline.config.settings import Settings
from pipeline.tools.chaos.__main__ import table
from pipeline.tools.chaos.harness import FaultResult, Script, last_words


def test_a_process_that_died_before_its_stop_is_a_crash_with_its_last_words(
    tmp_path: Path,
) -> None:
    script = Script("predictor.py", Settings(), tmp_path, label="t")
    tmp_path.joinpath("predictor-t.log").write_text(
        "INFO starting\n" + "WARNING noise\n" * 5 + "ERROR predictor: serving failed: boom\n\n"
    )
    script.process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(4)"])
    script.process.wait(30)

    assert script.stop() == 4

    assert script.crashes == 1
    (note,) = script.crash_notes
    assert note.startswith("predictor.py exited 4: ")
    assert note.endswith("WARNING noise // WARNING noise // ERROR predictor: serving failed: boom")


def test_last_words_of_a_missing_log_say_so(tmp_path: Path) -> None:
    assert last_words(tmp_path / "absent.log").startswith("(no log: ")


def test_the_fault_table_names_each_crash() -> None:
    crashed = FaultResult(
        "broker stopped 4s, restarted", 1, 100, 0, 0, 0, 1.0, 1,
        crash_notes=["trainer.py exited 4: ERROR a | b"],
    )  # fmt: skip

    row = table([crashed]).splitlines()[-1]

    assert row.endswith("| NO: crashed: trainer.py exited 4: ERROR a / b |")
