"""CPU an event, per thread and for the broker: what bounds one Predictor against its ceiling.

py-spy's shares (`profile.py`) say where the loop's wall time goes, waits included; they cannot
say how far the loop would go if it never waited. CPU seconds can: read from /proc (Linux)
before and after the same events, for the ceiling (in this process, its loop on this thread)
and for a Predictor (each of its threads), with the broker's beside each. The thread that runs
a loop does all of its Python under the GIL, so its CPU an event caps the events a second it
can handle at 100 % of one core, whatever else the machine has free.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
LOOP = "loop"  # the thread that runs the loop: a Predictor's first thread, the ceiling's caller's


def cpu_seconds(stat: str) -> float:
    """utime + stime of a /proc stat line; a thread's name may hold spaces and brackets."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_seconds(pid: int, loop_tid: int | None = None) -> dict[str, float]:
    """CPU seconds so far per thread name (threads of one name summed; the loop's as LOOP)."""
    loop_tid = pid if loop_tid is None else loop_tid
    seconds: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = LOOP if int(task.name) == loop_tid else (task / "comm").read_text().strip()
            seconds[name] = seconds.get(name, 0.0) + cpu_seconds((task / "stat").read_text())
        except (OSError, ValueError):
            continue  # a thread that ended between the listing and the read
    return seconds


def broker_pid(data_dir: Path) -> int | None:
    """The local broker started from `data_dir` (its config path is on its command line)."""
    wanted = str(Path(data_dir).resolve() / "server.properties").encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"kafka.Kafka" in argv and wanted in argv:
            return int(proc.name)
    return None


@dataclass(frozen=True)
class Reading:
    at: float  # monotonic seconds
    process: float  # the process's CPU seconds so far, threads that have ended included
    threads: dict[str, float]  # CPU seconds so far per live thread's name
    broker: float | None  # the broker's CPU seconds so far, where it runs on this machine


def read(pid: int, broker: int | None, loop_tid: int | None = None) -> Reading:
    broker_s = None
    if broker is not None:
        try:
            broker_s = cpu_seconds(Path(f"/proc/{broker}/stat").read_text())
        except OSError:
            broker_s = None
    process = cpu_seconds(Path(f"/proc/{pid}/stat").read_text())
    return Reading(time.monotonic(), process, thread_seconds(pid, loop_tid), broker_s)


def read_here(broker: int | None) -> Reading:
    """This process, with the calling thread as the loop's."""
    return read(os.getpid(), broker, threading.get_native_id())


@dataclass(frozen=True)
class Usage:
    """CPU microseconds an event between two readings."""

    events: int
    seconds: float
    process_us: float
    threads_us: dict[str, float]  # the threads alive at both readings, by name
    broker_us: float | None

    @property
    def loop_us(self) -> float:
        return self.threads_us.get(LOOP, 0.0)

    @property
    def others_us(self) -> float:
        """Every other thread's, those that ended between the readings included (the
        ceiling's clients are made and closed in between)."""
        return self.process_us - self.loop_us

    @property
    def loop_bound_eps(self) -> float:
        """The events a second the loop's thread allows at 100 % of one core."""
        return 1e6 / self.loop_us if self.loop_us > 0 else float("inf")


def usage(before: Reading, after: Reading, events: int) -> Usage:
    if events <= 0:
        raise ValueError(f"CPU an event needs events between the readings, not {events}")
    threads = {
        name: (spent - before.threads.get(name, 0.0)) * 1e6 / events
        for name, spent in after.threads.items()
    }
    broker = None
    if before.broker is not None and after.broker is not None:
        broker = (after.broker - before.broker) * 1e6 / events
    process = (after.process - before.process) * 1e6 / events
    return Usage(events, after.at - before.at, process, threads, broker)


def markdown(ceiling: Usage, ceiling_eps: float, predictor: Usage, client: str) -> str:
    def others(u: Usage) -> str:
        named = sorted(
            ((us, name) for name, us in u.threads_us.items() if name != LOOP), reverse=True
        )
        detail = ", ".join(f"{name} {us:.1f}" for us, name in named[:3] if us >= 0.05)
        return f"{u.others_us:.1f}" + (f" ({detail})" if detail else "")

    def broker(u: Usage) -> str:
        return "not on this machine" if u.broker_us is None else f"{u.broker_us:.1f}"

    predictor_eps = predictor.events / predictor.seconds if predictor.seconds > 0 else 0.0
    rows = [
        ("events a second, measured", f"{ceiling_eps:,.0f}", f"{predictor_eps:,.0f}"),
        ("the loop's thread (all its Python, under the GIL)", f"{ceiling.loop_us:.1f}",
         f"{predictor.loop_us:.1f}"),
        ("the client's other threads", others(ceiling), others(predictor)),
        ("the broker", broker(ceiling), broker(predictor)),
        ("events a second the loop's thread allows at 100 % of a core",
         f"{ceiling.loop_bound_eps:,.0f}", f"{predictor.loop_bound_eps:,.0f}"),
    ]  # fmt: skip
    lines = [
        f"CPU an event (microseconds, /proc), {client}, the same number of preloaded events:",
        "",
        "| | ceiling | Predictor |",
        "| --- | --- | --- |",
        *(f"| {name} | {c} | {p} |" for name, c, p in rows),
        "",
        f"The Predictor's loop thread at 100 % of one core: "
        f"{predictor.loop_bound_eps / ceiling_eps:.2f}x this ceiling.",
    ]
    return "\n".join(lines) + "\n"
