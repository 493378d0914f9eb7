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


def test_a_crash_is_counted_once_however_often_the_script_is_stopped(tmp_path: Path) -> None:
    script = Script("predictor.py", Settings(), tmp_path, label="t")
    script.process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(4)"])
    script.process.wait(30)

    assert script.stop() == 4
    assert script.stop() == 4  # a scenario's clean stop, then its `finally`

    assert script.crashes == 1 and len(script.crash_notes) == 1


def test_a_stop_asked_for_is_judged_by_its_caller_not_counted_as_a_crash(tmp_path: Path) -> None:
    """A non-zero exit after SIGTERM fails the scenario's clean-stop check; it is no crash."""
    script = Script("predictor.py", Settings(), tmp_path, label="t")
    script.process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time\n"
            "signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))\n"
            "print('up', flush=True)\n"
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    assert script.process.stdout is not None and script.process.stdout.readline() == b"up\n"

    script.terminate()
    script.process.wait(30)
    assert script.stop() == 3
    assert script.stop() == 3

    assert script.crashes == 0 and script.crash_notes == []


def test_last_words_of_a_missing_log_say_so(tmp_path: Path) -> None:
    assert last_words(tmp_path / "absent.log").startswith("(no log: ")


def test_the_fault_table_names_each_crash() -> None:
    crashed = FaultResult(
        "broker stopped 4s, restarted", 1, 100, 0, 0, 0, 1.0, 1,
        crash_notes=["trainer.py exited 4: ERROR a | b"],
    )  # fmt: skip

    row = table([crashed]).splitlines()[-1]

    assert row.endswith("| NO: crashed: trainer.py exited 4: ERROR a / b |")
