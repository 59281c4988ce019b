#!/usr/bin/env python3
"""Screenshots of the status page before, during and after the incident `ringward demo` tours.

    make check-ui          (or: python3 scripts/check-ui.py [--keep-going])

Installs Debian's `chromium` when it is missing (apt-get update once, then apt-get install -y
chromium: run as root, or with sudo available), builds and starts `ringward demo` (release
build) on free ports with the incident delayed by --tour-delay, and takes headless Chromium
screenshots of the status page at each stage, found by polling the admin API
(/admin/hosts) with a deadline, never by sleeping blind:

  target/check-ui/1-before.png     every host healthy, traffic flowing
  target/check-ui/2-ejected.png    the deadlocked host ejected, with the time left
  target/check-ui/3-probation.png  the host earning its Vals back
  target/check-ui/4-after.png      every host healthy again, the story in the events

and copies the ejected one to docs/status-page.png (the README's picture). Last it checks
that the page refreshes in place: in a headless Chromium driven over the DevTools protocol,
the page scrolled down, its content must change (the uptime moves on) while the scroll
position stays. Not part of CI: it needs a browser and about a minute. Look at the
pictures: that is the check.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "target" / "check-ui"
DOCS_COPY = ROOT / "docs" / "status-page.png"
BINARY = ROOT / "target" / "release" / "ringward"
# The fleet runs this long before the incident: enough for the "before" picture (a few
# seconds of charts, one browser run) to be taken while every host is healthy.
TOUR_DELAY_S = 15
WINDOW = "1280,1000"


def log(msg: str) -> None:
    print(f"check-ui: {msg}", flush=True)


def chromium() -> str:
    """The chromium binary, installed with apt-get when missing."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    log("chromium is missing: installing Debian's chromium (apt-get)")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "update"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "chromium"], check=True, env=env)
    found = shutil.which("chromium")
    if not found:
        sys.exit("check-ui: apt-get installed chromium, but it is not on PATH")
    return found


def build() -> None:
    log("building the release binary")
    subprocess.run(
        ["cargo", "build", "--release", "-p", "ringward-bin", "--bin", "ringward"],
        cwd=ROOT,
        check=True,
    )


def get_json(url: str, timeout: float = 2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def wait_for(what: str, deadline_s: float, probe):
    """Polls `probe` every 100 ms until it returns something truthy; fails at the deadline."""
    end = time.monotonic() + deadline_s
    last_error = None
    while time.monotonic() < end:
        try:
            value = probe()
            if value:
                return value
        except OSError as e:  # the router not up yet, or a refused connection
            last_error = e
        time.sleep(0.1)
    sys.exit(f"check-ui: not within {deadline_s:.0f} s: {what} (last error: {last_error})")


def states(admin: str) -> dict[str, str]:
    doc = get_json(f"{admin}/admin/hosts")
    return {h["name"]: h["state"] for h in doc["hosts"]}


def screenshot(browser: str, url: str, name: str) -> Path:
    path = OUT / f"{name}.png"
    path.unlink(missing_ok=True)
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--screenshot={path}",
        f"--window-size={WINDOW}",
        url,
    ]
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    if done.returncode != 0 or not path.exists():
        sys.exit(f"check-ui: chromium failed ({done.returncode}):\n{done.stderr[-2000:]}")
    log(f"{path.relative_to(ROOT)} ({time.monotonic() - started:.1f} s)")
    return path


class DevTools:
    """Just enough of the Chrome DevTools protocol (a WebSocket client on the standard
    library) to evaluate expressions in a page."""

    def __init__(self, browser: str, url: str, port: int = 9333):
        self.proc = subprocess.Popen(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                f"--remote-debugging-port={port}",
                "--window-size=1280,500",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        pages = wait_for(
            "chromium's DevTools endpoint",
            30,
            lambda: [
                t
                for t in get_json(f"http://127.0.0.1:{port}/json", timeout=1)
                if t.get("type") == "page"
            ],
        )
        ws = pages[0]["webSocketDebuggerUrl"]
        host, path = ws[len("ws://") :].split("/", 1)
        name, ws_port = host.rsplit(":", 1)
        self.sock = socket.create_connection((name, int(ws_port)), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        self.buf = self.buf.split(b"\r\n\r\n", 1)[1]
        self.next_id = 0

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("DevTools connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _frame(self) -> bytes:
        _, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._read(8))[0]
        return self._read(n)

    def eval(self, expression: str):
        self.next_id += 1
        data = json.dumps(
            {
                "id": self.next_id,
                "method": "Runtime.evaluate",
                "params": {"expression": expression, "returnByValue": True},
            }
        ).encode()
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x81]) + (
            bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
        )
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
        while True:
            msg = json.loads(self._frame())
            if msg.get("id") == self.next_id:
                return msg["result"]["result"].get("value")

    def close(self) -> None:
        self.sock.close()
        self.proc.terminate()
        self.proc.wait(timeout=20)


def check_scroll_stays(browser: str, url: str) -> None:
    """The page, scrolled down, refreshes its content in place and keeps its scroll."""
    tools = DevTools(browser, url)
    try:
        loaded = "document.readyState == 'complete' && !!document.querySelector('.summary')"
        wait_for("the page loaded", 20, lambda: tools.eval(loaded))
        summary = "document.querySelector('.summary').textContent"
        tools.eval("window.scrollTo(0, 300)")
        y, before = tools.eval(f"[window.scrollY, {summary}]")
        if y != 300:
            sys.exit(f"check-ui: the page cannot be scrolled to 300 px (at {y}); too short?")
        # The refresh every 2 s moves the uptime on.
        after = wait_for(
            "the page's content refreshed",
            10,
            lambda: (t := tools.eval(summary)) != before and t,
        )
        y = tools.eval("window.scrollY")
        if y != 300:
            sys.exit(f"check-ui: the refresh moved the scroll from 300 px to {y}")
        log(f"refreshed in place, scroll kept at {y} px ({before!r} -> {after!r})")
    finally:
        tools.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    browser = chromium()
    build()
    OUT.mkdir(parents=True, exist_ok=True)

    demo = subprocess.Popen(
        [
            str(BINARY),
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--tour-delay",
            f"{TOUR_DELAY_S}s",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    transcript: list[str] = []
    try:
        # The demo prints the status page's URL once the router is up.
        url = None
        end = time.monotonic() + 60
        while url is None and time.monotonic() < end:
            line = demo.stdout.readline()
            if not line:
                break
            transcript.append(line)
            m = re.search(r"Status page:\s+(\S+)", line)
            if m:
                url = m.group(1)
        if url is None:
            sys.exit("check-ui: the demo printed no status page URL:\n" + "".join(transcript))
        admin = url.rstrip("/")
        log(f"status page at {url}")
        # Keep reading the demo's output so its pipe never fills.
        def pump():
            for line in demo.stdout:
                transcript.append(line)

        threading.Thread(target=pump, daemon=True).start()

        # Before: every host healthy, and each host's charts have points (the page has
        # left "collecting"). The fragment is what the page shows.
        wait_for(
            "three healthy hosts",
            20,
            lambda: len(states(admin)) == 3 and set(states(admin).values()) == {"healthy"},
        )

        def charted():
            with urllib.request.urlopen(f"{admin}/admin/page-fragment", timeout=2) as r:
                page = r.read().decode()
            # Every host's charts have points.
            return page if "collecting" not in page else None

        wait_for("charts with points", 20, charted)
        # A few seconds of history make the before picture worth looking at; the incident
        # waits TOUR_DELAY_S, and the check below proves it had not begun.
        wait_for(
            "five seconds of history",
            20,
            lambda: uptime_s(charted() or "") >= 6,
        )
        screenshot(browser, url, "1-before")
        after_shot = states(admin)
        if set(after_shot.values()) != {"healthy"}:
            sys.exit(
                f"check-ui: the incident began before the 'before' picture was taken ({after_shot});"
                " raise TOUR_DELAY_S"
            )

        # During: the deadlocked host is ejected.
        def ejected():
            s = states(admin)
            names = [n for n, st in s.items() if st == "ejected"]
            return names[0] if names else None

        host = wait_for("a host ejected", TOUR_DELAY_S + 30, ejected)
        log(f"{host} ejected")

        # A second and a half into the ejection (of 5 s) its charts show it, and time is left.
        def ejected_for(ms: int):
            doc = get_json(f"{admin}/admin/hosts")
            h = next(h for h in doc["hosts"] if h["name"] == host)
            return h["state"] == "ejected" and (h["since_ms"] or 0) >= ms

        wait_for(f"{host} ejected for 1.5 s", 10, lambda: ejected_for(1500))
        shot = screenshot(browser, url, "2-ejected")
        shutil.copyfile(shot, DOCS_COPY)
        log(f"copied to {DOCS_COPY.relative_to(ROOT)}")

        # Then probation (missed if it was over before the browser came back: not an error).
        s = wait_for(
            f"{host} in probation or back",
            60,
            lambda: (st := states(admin)[host]) in ("probation", "healthy") and st,
        )
        if s == "probation":
            screenshot(browser, url, "3-probation")
        else:
            log(f"{host} passed probation before it could be pictured")

        # After: every host healthy again.
        wait_for(
            f"{host} healthy again",
            60,
            lambda: set(states(admin).values()) == {"healthy"},
        )
        screenshot(browser, url, "4-after")
        check_scroll_stays(browser, url)
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)  # the demo stops on Ctrl-C
            try:
                demo.wait(timeout=20)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
        (OUT / "demo.log").write_text("".join(transcript))
    log(f"done: look at {OUT.relative_to(ROOT)}/*.png (the demo's output is in demo.log)")


def uptime_s(page: str) -> float:
    """The page's uptime in seconds (from its `up <b>..</b>` figure)."""
    m = re.search(r"up <b>([^<]+)</b>", page)
    if not m:
        return 0.0
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)\s*(ms|s|min|h|d)", m.group(1).replace("\u00a0", " ")):
        total += float(number) * {"ms": 0.001, "s": 1, "min": 60, "h": 3600, "d": 86400}[unit]
    return total


if __name__ == "__main__":
    main()
