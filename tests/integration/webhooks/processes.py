"""Webhook receivers started as processes by the tests (``webhooks serve``, ``daemon --webhook-port``),
their output read as it comes, and the port they listen on read from it."""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[3]

# ``webhooks serve`` prints "webhook receiver on URL ..."; the daemon logs "... listening on URL"
LISTENING = re.compile(r"webhook receiver (?:listening )?on http://127\.0\.0\.1:(\d+)")


def start_logged(command: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    """``command`` started, and its output (standard output and error) read on a thread into the
    returned list."""
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    lines: list[str] = []

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)

    threading.Thread(target=drain, daemon=True).start()
    return process, lines


def receiver_port(process: subprocess.Popen[str], lines: list[str], *, timeout: float = 60) -> int:
    """The port a receiver started with port 0 listens on, once it answers /healthz: a port picked
    beforehand could be taken by another process before the receiver binds it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = next((m for line in list(lines) if (m := LISTENING.search(line))), None)
        if found is not None:
            port = int(found.group(1))
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return port
        if process.poll() is not None:
            time.sleep(0.2)  # the last lines
            raise AssertionError(f"receiver exited: {''.join(lines)}")
        time.sleep(0.1)
    raise AssertionError(f"receiver did not start: {''.join(lines)}")
