"""The sandbox for one platform in its own process, as a remote platform would be.

In-process, the emulator's thread would compete with the client for the interpreter lock and make
the client look slower than it is; in a separate process it uses the other core.

    python -m bench.serve --platform hubspot --persons 3000 --seed 7 --latency-ms 50

prints one JSON line (base URL, the source's config, contacts on the platform) once it listens,
then serves until its standard input closes.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
from types import TracebackType
from typing import Any

import httpx

__all__ = ["RemoteSandbox"]


def _emulator(platform: str) -> type:
    if platform == "hubspot":
        from leadsync.sandbox.hubspot.emulator import HubSpotEmulator

        return HubSpotEmulator
    if platform == "mailchimp":
        from leadsync.sandbox.mailchimp.emulator import MailchimpEmulator

        return MailchimpEmulator
    from leadsync.sandbox.activecampaign.emulator import ActiveCampaignEmulator

    return ActiveCampaignEmulator


class RemoteSandbox:
    """A ``bench.serve`` child process and its admin API (stats, reset, latency)."""

    def __init__(
        self, platform: str, *, persons: int, seed: int, latency_ms: float, rate_limits: bool = True
    ) -> None:
        self.platform = platform
        command = [
            sys.executable,
            "-m",
            "bench.serve",
            "--platform",
            platform,
            "--persons",
            str(persons),
            "--seed",
            str(seed),
            "--latency-ms",
            str(latency_ms),
            "--rate-limits",
            "on" if rate_limits else "off",
        ]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            self.close()
            raise RuntimeError(f"the {platform} sandbox did not start")
        ready = json.loads(line)
        self.url: str = ready["base_url"]
        # one platform: its source; "all": every platform's, in ``sources`` (and contacts per platform)
        self.sources: list[dict[str, Any]] = ready.get("sources") or [ready["source_config"]]
        self.source_config: dict[str, Any] = self.sources[0]
        self.contacts: Any = ready["contacts"]
        self.admin = httpx.Client(base_url=self.url, timeout=30)

    def base_url(self, platform: str | None = None) -> str:
        return self.url

    def stats(self) -> dict[str, Any]:
        return self.admin.get("/_sandbox/stats").json()

    def reset(self) -> None:
        self.admin.post("/_sandbox/stats/reset").raise_for_status()

    def set_latency(self, ms: float) -> None:
        self.admin.post("/_sandbox/latency", json={"ms": ms}).raise_for_status()

    def close(self) -> None:
        if getattr(self, "admin", None) is not None:
            self.admin.close()
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> RemoteSandbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve one platform's emulator for the benchmark.")
    parser.add_argument(
        "--platform", required=True, choices=("hubspot", "mailchimp", "activecampaign", "all")
    )
    parser.add_argument("--rate-limits", choices=("on", "off"), default="on")
    parser.add_argument("--persons", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()

    from leadsync.sandbox.server import SandboxServer
    from leadsync.sandbox.world import generate_world

    world = generate_world(args.persons, args.seed)
    names = ["hubspot", "mailchimp", "activecampaign"] if args.platform == "all" else [args.platform]
    server = SandboxServer.for_world(
        world,
        emulators=[_emulator(name) for name in names],
        ports=dict.fromkeys(names, 0),
        rate_limits=args.rate_limits == "on",
        latency_ms=args.latency_ms,
    )
    # The world is built: its objects live until the end. Frozen, the collector stops
    # walking them; a full collection of them stalled every request in flight for 220-350 ms,
    # at random in a step (leadsync's or the raw client's): noise in the very figures compared.
    gc.collect()
    gc.freeze()
    with server:
        if args.platform == "all":
            hosts = {name: server.state.hosts[name].emulator for name in names}
            print(
                json.dumps(
                    {
                        "base_url": server.base_url(names[0]),
                        "sources": [hosts[n].source_config(server.base_url(n)) for n in names],
                        "contacts": {n: len(world.persons_on(n)) for n in names},
                    }
                ),
                flush=True,
            )
            sys.stdin.read()
            return
        url = server.base_url(args.platform)
        emulator = server.state.hosts[args.platform].emulator
        print(
            json.dumps(
                {
                    "base_url": url,
                    "source_config": emulator.source_config(url),
                    "contacts": len(world.persons_on(args.platform)),
                }
            ),
            flush=True,
        )
        sys.stdin.read()  # until the parent closes it


if __name__ == "__main__":
    main()
