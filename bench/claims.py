"""Claims: at most one worker runs a cell at a time, on any executor, on a shared filesystem.

A claim is a file `<out>/claims/<record name>.claim` created atomically (O_CREAT | O_EXCL). The
worker holding it touches it every `HEARTBEAT_SECONDS`; a claim not touched for `STALE_SECONDS`
belongs to a dead worker and may be taken over (renamed away atomically, so that of several
runners seeing it stale only one takes it).
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
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


def try_claim(root: Path, stem: str, stale_after: float | None = None) -> Claim | None:
    """The claim on cell `stem`, or None if a live worker holds it."""
    stale_after = STALE_SECONDS if stale_after is None else stale_after
    path = claim_path(root, stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()})
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if not is_stale(path, stale_after):
                return None
            stale = path.with_name(f".stale-{uuid.uuid4().hex}-{path.name}")
            try:  # take over a dead worker's claim: only one renamer succeeds
                os.rename(path, stale)
                stale.unlink()
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as f:
            f.write(owner)
        return Claim(path)
    return None


def live_claims(root: Path, stale_after: float | None = None) -> dict[str, dict]:
    """{record name: owner info} of the claims held by live workers."""
    stale_after = STALE_SECONDS if stale_after is None else stale_after
    folder = Path(root) / "claims"
    out = {}
    for path in folder.glob("*.claim") if folder.exists() else []:
        if not path.name.startswith(".") and not is_stale(path, stale_after):
            try:
                out[path.name[:-len(".claim")]] = json.loads(path.read_text() or "{}")
            except (OSError, json.JSONDecodeError):
                out[path.name[:-len(".claim")]] = {}
    return out
