"""A page opened in a real browser: headless Chromium driven over the DevTools protocol.

`inspect_page(path)` loads an HTML file from disk in headless Chromium and says what a reader's
browser saw: every request it made (URL), every console error and uncaught exception, every image
with its decoded (natural) size, every table with its rows, and (optionally) a screenshot of the
whole page. The protocol runs over a pipe (`--remote-debugging-pipe`: JSON messages separated by
NUL bytes on file descriptors 3 and 4), so no driver package and no port are needed; Chromium is
started with networking features off and a fresh profile, and is stopped afterwards.

    python tests/browser.py results/report.html --width 1800 --max-height 2000 \
        --screenshot reports/report-mini.png

prints the summary as JSON (tests/test_html_report.py checks the pages with it). Chromium:
Debian's `chromium` package (`apt-get install chromium`; .ci/run installs it), or $BENCH_CHROMIUM.
"""
from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

CHROMIUM_ENV = "BENCH_CHROMIUM"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-pipe"]
MAX_SCREENSHOT_HEIGHT = 16000   # px: a taller page is shot down to this height

# What the page holds, read in the page once every image has been decoded (or failed to).
PAGE_STATE = """(async () => {
  await Promise.all([...document.images].map(i => i.decode().catch(() => null)));
  const layout = t => { const b = t.closest('[data-layout]'); return b ? [b.id, b.dataset.layout] : [null, null]; };
  return {
    title: document.title,
    scripts: document.scripts.length,
    images: [...document.images].map(i => ({alt: i.alt, scheme: i.src.split(':')[0], complete: i.complete,
                                            naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight})),
    tables: [...document.querySelectorAll('table')].map(t => ({
      id: layout(t)[0], layout: layout(t)[1],
      headers: [...t.querySelectorAll('thead th')].map(h => h.textContent),
      rows: [...t.querySelectorAll('tbody tr')].map(r => [...r.cells].map(c => c.textContent)),
      caption: (t.closest('figure') && t.closest('figure').querySelector('figcaption') || {}).textContent || ''})),
    links: [...document.querySelectorAll('[href],[src]')].map(e => e.getAttribute('href') || e.getAttribute('src'))
             .map(u => u.startsWith('data:') ? 'data:' : u),
    text: document.body.innerText,
    // what does not fit the window's width: the page itself, and any box that scrolls sideways
    pageOverflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    overflowing: [...document.querySelectorAll('figure, .layout, table, img, pre, dl')]
      .filter(e => e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
      .map(e => (e.closest('[id]') || {}).id + ' ' + e.tagName + ' ' + (e.scrollWidth - e.clientWidth)),
  };
})()"""


class BrowserError(RuntimeError):
    """Chromium could not be started or did not answer."""


def find_chromium() -> str | None:
    """$BENCH_CHROMIUM, else chromium / chromium-browser / google-chrome on PATH."""
    if os.environ.get(CHROMIUM_ENV):
        return shutil.which(os.environ[CHROMIUM_ENV]) or os.environ[CHROMIUM_ENV]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


class Chromium:
    """A headless Chromium and one DevTools session on its first page."""

    def __init__(self, binary: str | None = None, width: int = 1400, height: int = 1000,
                 timeout: float = 90.0):
        self.binary = binary or find_chromium()
        if not self.binary:
            raise BrowserError(f"no Chromium found (install Debian's chromium, or set ${CHROMIUM_ENV})")
        self.timeout = timeout
        self.profile = tempfile.TemporaryDirectory(prefix="bench-chromium-")
        self.log = open(Path(self.profile.name) / "stderr.log", "w+b")
        self.returncode: int | None = None
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # Chromium reads the protocol on fd 3 and writes on fd 4: the pipe ends are moved there by
        # posix_spawn (no code runs in the child); copies above 9 first, so that no dup2 overwrites
        # the other end. Its own session, so that closing it can stop all its processes at once.
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_chrome_r, from_chrome_w)]
        try:
            self.pid = os.posix_spawn(
                self.binary, [self.binary, *FLAGS, f"--user-data-dir={self.profile.name}",
                              f"--window-size={width},{height}", "about:blank"], os.environ,
                file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                              (os.POSIX_SPAWN_DUP2, self.log.fileno(), 1),
                              (os.POSIX_SPAWN_DUP2, self.log.fileno(), 2),
                              (os.POSIX_SPAWN_DUP2, ends[0], 3), (os.POSIX_SPAWN_DUP2, ends[1], 4)],
                setsid=True)
        except OSError as err:
            os.close(self.to_chrome)
            os.close(self.from_chrome)
            self.log.close()
            self.profile.cleanup()
            raise BrowserError(f"cannot start {self.binary}: {err}") from err
        finally:
            for fd in (to_chrome_r, from_chrome_w, *ends):
                os.close(fd)
        self.messages: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.session = self._attach()
        except BaseException:
            self.close()
            raise

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self.from_chrome, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                self.messages.put(None)
                return
            buffer += chunk
            *complete, buffer = buffer.split(b"\0")
            for message in complete:
                self.messages.put(json.loads(message))

    def _next(self, deadline: float) -> dict:
        try:
            message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise BrowserError(f"Chromium did not answer within {self.timeout:.0f} s") from None
        if message is None:
            raise BrowserError("Chromium closed the DevTools pipe: " + self.stderr_tail())
        return message

    def stderr_tail(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:]

    def send(self, method: str, params: dict | None = None, session: bool = True) -> dict:
        """A command's result (its events meanwhile kept in `events`)."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self.to_chrome, data):]
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._next(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, event: str) -> dict:
        """The first event `event` (already received, or the next to come)."""
        deadline = time.monotonic() + self.timeout
        for seen in self.events:
            if seen["method"] == event:
                return seen
        while True:
            reply = self._next(deadline)
            if "method" in reply:
                self.events.append(reply)
                if reply["method"] == event:
                    return reply

    def _attach(self) -> str:
        self.session = None
        targets = self.send("Target.getTargets", session=False)["targetInfos"]
        page = next((t["targetId"] for t in targets if t["type"] == "page"), None)
        if page is None:
            page = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        attached = self.send("Target.attachToTarget", {"targetId": page, "flatten": True}, session=False)
        return attached["sessionId"]

    def running(self) -> bool:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode is None

    def close(self) -> None:
        """Browser.close, then (after 15 s) SIGKILL to the session Chromium leads; its temporary
        profile removed."""
        try:
            if self.running():
                self.send("Browser.close", session=False)
        except (BrowserError, OSError):
            pass
        deadline = time.monotonic() + 15
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.running():
            try:
                os.killpg(self.pid, signal.SIGKILL)   # the group is Chromium's own (setsid)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            self.returncode = -signal.SIGKILL
        for fd in (self.to_chrome, self.from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()
        self.profile.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def short_url(url: str) -> str:
    """A URL as said in a summary: a data: URL by its media type only ('data:image/png;base64')."""
    return url.split(",", 1)[0] if url.startswith("data:") else url


def console_errors(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and error log entries (a blocked load, a bad image)."""
    errors = []
    for event in events:
        params = event.get("params", {})
        if event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = params.get("args", [])
            errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
        elif event["method"] == "Runtime.exceptionThrown":
            errors.append(str(params.get("exceptionDetails", {}).get("text")))
        elif event["method"] == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            errors.append(f"{params['entry'].get('source')}: {params['entry'].get('text')}")
    return errors


def inspect_page(page: str | Path, screenshot: str | Path | None = None, width: int = 1400,
                 max_height: int = MAX_SCREENSHOT_HEIGHT, binary: str | None = None,
                 timeout: float = 90.0) -> dict:
    """Load `page` (a file) and return {requests, errors, title, scripts, images, tables, links,
    text, height} (see PAGE_STATE); with `screenshot`, write a PNG of the page (full height, up to
    `max_height` pixels) there."""
    url = Path(page).resolve().as_uri()
    with Chromium(binary, width=width, timeout=timeout) as browser:
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable")
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
        navigation = browser.send("Page.navigate", {"url": url})
        if navigation.get("errorText"):
            raise BrowserError(f"{url}: {navigation['errorText']}")
        browser.wait_for("Page.loadEventFired")
        state = browser.send("Runtime.evaluate", {"expression": PAGE_STATE, "awaitPromise": True,
                                                  "returnByValue": True})
        if "exceptionDetails" in state:
            raise BrowserError(f"reading the page failed: {state['exceptionDetails']}")
        result = state["result"]["value"]
        size = browser.send("Page.getLayoutMetrics")["cssContentSize"]
        result["height"] = int(size["height"])
        if screenshot is not None:
            height = min(int(size["height"]), max_height)
            browser.send("Emulation.setDeviceMetricsOverride",
                         {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
            shot = browser.send("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
        browser.send("Runtime.evaluate", {"expression": "1"})   # let late events arrive in order
        result["requests"] = [short_url(e["params"]["request"]["url"]) for e in browser.events
                              if e["method"] == "Network.requestWillBeSent"]
        result["errors"] = console_errors(browser.events)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/browser.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("page", help="an HTML file")
    p.add_argument("--screenshot", default=None, metavar="PNG", help="write a screenshot of the page here")
    p.add_argument("--width", type=int, default=1400, help="viewport width in CSS pixels (default 1400)")
    p.add_argument("--max-height", type=int, default=MAX_SCREENSHOT_HEIGHT,
                   help=f"cut the screenshot at this height (default {MAX_SCREENSHOT_HEIGHT})")
    args = p.parse_args(argv)
    try:
        result = inspect_page(args.page, args.screenshot, args.width, args.max_height)
    except BrowserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = {"title": result["title"], "height": result["height"], "requests": result["requests"],
               "errors": result["errors"], "scripts": result["scripts"],
               "images": len(result["images"]),
               "images_not_decoded": [i["alt"] for i in result["images"] if not i["naturalWidth"]],
               "tables": len(result["tables"]), "page_overflow_px": result["pageOverflow"],
               "overflowing": result["overflowing"]}
    print(json.dumps(summary, indent=1))
    return 0 if not summary["errors"] and not summary["images_not_decoded"] else 1


if __name__ == "__main__":
    sys.exit(main())
