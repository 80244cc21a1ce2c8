"""Claims: at most one worker runs a cell at a time, on any executor, on a shared filesystem.

A claim is a file `<out>/claims/<record name>.claim` created atomically (O_CREAT | O_EXCL), holding
its owner's host and pid. The worker holding it touches it every `HEARTBEAT_SECONDS`. A claim of
a dead worker may be taken over: its owner ran on this host and that process no longer exists (at
once; a zombie counts as gone), or it was not touched for `STALE_SECONDS` (a worker on another
host).

Takeover is atomic: a runner that judged claim X dead first creates `.takeover-<digest of X>`
(O_EXCL: one runner per dead claim), then checks that the claim file still holds X before removing
it. A runner that read X and was overtaken finds either the marker (someone is taking X over) or,
once the marker is gone, another claim in X's place, and leaves it alone: the claim cannot change
under a marker's holder, since nobody else may remove X and nobody can create a claim where X is.
A marker left by a runner killed in that instant is itself taken as abandoned after
`STALE_SECONDS`.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from pathlib import Path

HEARTBEAT_SECONDS = 10.0
# A claim untouched this long is a dead worker's (6 missed heartbeats); tests shorten it.
STALE_SECONDS = float(os.environ.get("BENCH_CLAIM_STALE_SECONDS", "60"))


class Claim:
    def __init__(self, path: Path):
        self.path = path
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start_heartbeat(self, every: float = HEARTBEAT_SECONDS) -> Claim:
        def beat():
            while not self._stop.wait(every):
                try:
                    os.utime(self.path)
                except FileNotFoundError:
                    return
        self._thread = threading.Thread(target=beat, daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.path.unlink(missing_ok=True)

    def __enter__(self):
        return self.start_heartbeat()

    def __exit__(self, *exc):
        self.release()


def claim_path(root: Path, stem: str) -> Path:
    return Path(root) / "claims" / f"{stem}.claim"


def is_stale(path: Path, stale_after: float = STALE_SECONDS) -> bool:
    try:
        return time.time() - path.stat().st_mtime > stale_after
    except FileNotFoundError:
        return False


def owner(path: Path) -> dict:
    """The claim's owner ({'host', 'pid', 'since'}); {} while it is being written or unreadable."""
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def process_exists(pid: int) -> bool:
    """Whether process `pid` runs on this host (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def process_started_at(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch; Linux's /proc), or None if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])   # field 22: starttime, since boot
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def is_dead(path: Path, stale_after: float = STALE_SECONDS) -> bool:
    """The claim's worker is gone: a process of this host that no longer exists, or whose pid now
    belongs to a process started after the claim was made (the pid was reused), or silent for
    `stale_after` seconds (the only sign a worker on another host gives)."""
    info = owner(path)
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int):
        if not process_exists(info["pid"]):
            return path.exists()
        started, since = process_started_at(info["pid"]), info.get("since")
        if started is not None and isinstance(since, (int, float)) and started > since + 1.0:
            return path.exists()   # 1 s: /proc's start time is rounded to clock ticks
    return is_stale(path, stale_after)


def try_claim(root: Path, stem: str, stale_after: float | None = None) -> Claim | None:
    """The claim on cell `stem`, or None if a live worker holds it."""
    stale_after = STALE_SECONDS if stale_after is None else stale_after
    path = claim_path(root, stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()})
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            content = read_bytes(path)
            if content is None:
                continue   # removed meanwhile: try to create it again
            if not is_dead(path, stale_after) or not remove_dead_claim(path, content):
                return None
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me)
        return Claim(path)
    return None


def read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def remove_dead_claim(path: Path, content: bytes) -> bool:
    """Remove the claim at `path` if it still holds `content` (the one judged dead), under its
    takeover marker; False if another runner is taking it over or it was already replaced."""
    digest = hashlib.sha256(path.name.encode() + b"\0" + content).hexdigest()[:20]
    marker = path.with_name(f".takeover-{digest}-{path.name}")
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        if is_stale(marker):   # its runner died mid-takeover: the next attempt may take X over
            marker.unlink(missing_ok=True)
        return False
    try:
        if read_bytes(path) != content:
            return False   # replaced by a live claim since it was judged dead
        path.unlink(missing_ok=True)
        return True
    finally:
        marker.unlink(missing_ok=True)


def live_claims(root: Path, stale_after: float | None = None) -> dict[str, dict]:
    """{record name: owner info} of the claims held by live workers."""
    stale_after = STALE_SECONDS if stale_after is None else stale_after
    folder = Path(root) / "claims"
    out = {}
    for path in folder.glob("*.claim") if folder.exists() else []:
        if not path.name.startswith(".") and not is_dead(path, stale_after):
            out[path.name[:-len(".claim")]] = owner(path)
    return out


def describe_holder(info: dict) -> str:
    """'pid 123 on host': who holds a claim (its owner info, as `live_claims` gives it)."""
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')}"


def release_if_owned_by(path: Path, pid: int) -> None:
    """Remove a claim left by worker `pid` (a worker the runner saw die)."""
    if owner(path).get("pid") == pid:
        path.unlink(missing_ok=True)
