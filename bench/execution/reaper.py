"""A watchdog that ends what a runner started when the runner is killed outright (`kill -9`).

The local executor's workers die with their runner, but a local Ray cluster's processes (GCS,
raylet, its agents, the cell workers) outlive a runner killed by SIGKILL: measured here, each such
kill left Ray's two agents (about 90 MB each) running. `start_reaper()` starts this module in its
own session, watching the runner's pid: while the runner lives it records the runner's
descendants (pid and start time, from /proc) every `INTERVAL` seconds; once the runner is gone
(or a zombie) it sends SIGKILL to each recorded process that still runs with the same start time
(a pid the system has since reused is left alone), then exits. A runner that ends normally stops
it first (`stop()`), after `ray.shutdown()`. Linux only (/proc); elsewhere nothing is started.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

INTERVAL = 0.25


def process_table() -> dict[int, tuple[int, str, str]]:
    """{pid: (parent pid, start time in clock ticks, state)} of every process (Linux /proc)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry.name)] = (int(fields[1]), fields[19], fields[0])
    return table


def descendants(root: int, table: dict[int, tuple[int, str, str]]) -> dict[int, str]:
    """{pid: start time} of every process below `root`."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, stack = {}, list(children.get(root, []))
    while stack:
        pid = stack.pop()
        if pid not in found:
            found[pid] = table[pid][1]
            stack += children.get(pid, [])
    return found


def alive(pid: int, table: dict[int, tuple[int, str, str]]) -> bool:
    return pid in table and table[pid][2] != "Z"


def watch(runner: int, interval: float = INTERVAL) -> list[int]:
    """Record the runner's descendants while it lives; then kill those still running. Returns the
    pids it killed."""
    me, known = os.getpid(), {}
    while True:
        table = process_table()
        if not alive(runner, table):
            break
        known.update(descendants(runner, table))
        known = {pid: start for pid, start in known.items() if pid in table}
        time.sleep(interval)
    killed = []
    table = process_table()
    for pid, start in known.items():
        if pid != me and pid in table and table[pid][1] == start and table[pid][2] != "Z":
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
    return killed


def start_reaper() -> subprocess.Popen | None:
    """Start the watchdog for this process (its own session, so that a signal to the runner's
    process group does not reach it); None where there is no /proc."""
    if not Path("/proc/self/stat").exists():
        return None
    return subprocess.Popen([sys.executable, "-m", "bench.execution.reaper", str(os.getpid())],
                            start_new_session=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(reaper: subprocess.Popen | None) -> None:
    """The runner ends normally: the watchdog exits without killing anything."""
    if reaper is not None and reaper.poll() is None:
        reaper.terminate()
        reaper.wait(timeout=10)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))   # stopped by its runner: kill nothing
    watch(int(sys.argv[1]))
