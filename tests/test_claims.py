"""Claims of dead workers: a zombie owner counts as dead, and a dead claim is taken over by
exactly one of several runners that see it dead at once."""
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time

from bench.execution import claims
from bench.execution.claims import claim_path, is_dead, process_exists, try_claim


def write_claim(root, stem, pid):
    path = claim_path(root, stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "since": time.time()}))
    return path


def test_a_zombie_owner_is_dead(tmp_path):
    """A child that exited but was not reaped is a zombie: `kill(pid, 0)` still succeeds, but it
    runs nothing; its claim must be taken over (seen after `kill -9` of a Ray runner here)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 10
    while time.time() < deadline:   # wait until it has exited, without reaping it
        with open(f"/proc/{child.pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.01)
    try:
        os.kill(child.pid, 0)                      # the kernel still has the process entry
        assert not process_exists(child.pid)
        path = write_claim(tmp_path, "cell", child.pid)
        assert is_dead(path, stale_after=3600)     # fresh, but its owner is gone
        assert try_claim(tmp_path, "cell", stale_after=3600) is not None
    finally:
        child.wait()
    assert process_exists(os.getpid())


def race(root, barrier, results, index, delay):
    """One runner: judge the dead claim dead, then (slowly, as a loaded machine would) take it."""
    judged = claims.is_dead

    def slow_is_dead(path, stale_after=claims.STALE_SECONDS):
        dead = judged(path, stale_after)
        time.sleep(delay)   # the window between judging a claim dead and removing it
        return dead

    claims.is_dead = slow_is_dead
    barrier.wait()
    claim = try_claim(root, "cell", stale_after=3600)
    results[index] = claim is not None
    time.sleep(0.3)         # hold it while the other runner finishes
    if claim is not None:
        claim.path.unlink(missing_ok=True)


def test_two_runners_taking_over_one_dead_claim_at_once_get_it_once(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    context = multiprocessing.get_context("fork")
    for trial in range(6):
        root = tmp_path / str(trial)
        write_claim(root, "cell", dead.pid)
        barrier, results = context.Barrier(2), context.Array("b", [False, False])
        # one runner judges at once; the other judges the same dead claim, then waits past the
        # first one's takeover and new claim before removing "the dead claim"
        runners = [context.Process(target=race, args=(root, barrier, results, i, (0.0, 0.1)[i]))
                   for i in range(2)]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join(20)
        assert [r.exitcode for r in runners] == [0, 0]
        assert sum(results) == 1, (trial, list(results))
        assert not list(claim_path(root, "cell").parent.glob(".takeover-*"))


def race_in_the_marker_window(root, barrier, results, index, without_exclusive_marker):
    """One runner taking over the dead claim: runner 0 dawdles between checking the claim's content
    and removing it (the window the takeover marker guards); runner 1 arrives inside that window."""
    if without_exclusive_marker:   # the defect the marker's O_EXCL prevents: a marker anyone may create
        real_open = os.open

        def open_without_excl(path, flags, *args):
            if ".takeover-" in str(path):
                flags &= ~os.O_EXCL
            return real_open(path, flags, *args)
        claims.os.open = open_without_excl
    real_read, calls = claims.read_bytes, [0]

    def read_then_dawdle(path):
        content = real_read(path)
        calls[0] += 1
        if calls[0] == 2 and index == 0:   # the content check inside remove_dead_claim
            time.sleep(0.4)
        return content
    claims.read_bytes = read_then_dawdle
    barrier.wait()
    if index == 1:
        time.sleep(0.15)   # inside runner 0's window
    claim = try_claim(root, "cell", stale_after=3600)
    results[index] = claim is not None
    time.sleep(0.8)        # hold it while the other runner finishes


def marker_window_race(tmp_path, without_exclusive_marker: bool) -> int:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    context = multiprocessing.get_context("fork")
    write_claim(tmp_path, "cell", dead.pid)
    barrier, results = context.Barrier(2), context.Array("b", [False, False])
    runners = [context.Process(target=race_in_the_marker_window,
                               args=(tmp_path, barrier, results, i, without_exclusive_marker)) for i in range(2)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(20)
    assert [r.exitcode for r in runners] == [0, 0]
    return sum(results)


def test_the_takeover_marker_guards_the_window_between_the_check_and_the_removal(tmp_path):
    """Runner 1 judges the dead claim dead while runner 0, holding the marker, has checked the
    claim's content but not yet removed it. With the marker created O_EXCL, runner 1 backs off:
    one claim. The same race with a marker created without O_EXCL gives two runners the cell (the
    late one removes the claim the first just made): the test sees the defect it guards against."""
    assert marker_window_race(tmp_path / "exclusive", without_exclusive_marker=False) == 1
    assert marker_window_race(tmp_path / "not-exclusive", without_exclusive_marker=True) == 2
