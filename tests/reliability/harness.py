"""Plumbing of the reliability suite: sandboxes that hold marker secrets, the real CLI as a subprocess
(every output kept for the secret scan), faults through the sandbox's own admin API, and the
lost/duplicated count of a store against what the platforms expose."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import tomli_w

from leadsync.sandbox.server import SandboxServer
from tests.integration.pipeline.harness import Leadsync, serve
from tests.reliability.figures import Figures

# Marker secrets: distinctive, so any occurrence anywhere is a leak. The Mailchimp key's stem (the
# part before the data centre) is a secret on its own (mailchimp.md §1).
HUBSPOT_TOKEN = "pat-na1-MARKERhubspot7f3a9c21-d4e5-4b6a-9c8d-leakcheck"
MAILCHIMP_STEM = "feedc0de5ec12e7a11ce0000ma1c41mp"
MAILCHIMP_KEY = f"{MAILCHIMP_STEM}-us6"
AC_TOKEN = "MARKERac0a1b2c3d4e5f60718293a4b5c6d7e8f9MARKERactivecampaign0leakcheck000"
OAUTH = {
    "client_id": "MARKERclientid-0b1c2d3e",
    "client_secret": "MARKERclientsecret-9f8e7d6c5b4a",
    "refresh_token": "MARKERrefresh-na1-1a2b3c4d5e6f7a8b",
}
# Every marker, and the ones that are not identifiers (a client id is not secret, but we check it too).
MARKERS = (HUBSPOT_TOKEN, MAILCHIMP_KEY, MAILCHIMP_STEM, AC_TOKEN, *OAUTH.values())
ENV_NAMES = {
    "hubspot": {"token": "LSREL_HUBSPOT_TOKEN"},
    "mailchimp": {"api_key": "LSREL_MAILCHIMP_API_KEY"},
    "activecampaign": {"api_token": "LSREL_AC_TOKEN"},
}
ENV_VALUES = {
    "LSREL_HUBSPOT_TOKEN": HUBSPOT_TOKEN,
    "LSREL_MAILCHIMP_API_KEY": MAILCHIMP_KEY,
    "LSREL_AC_TOKEN": AC_TOKEN,
}
EMULATOR_SECRETS = {
    "hubspot": {"token": HUBSPOT_TOKEN, "oauth": OAUTH},
    "mailchimp": {"api_key": MAILCHIMP_KEY},
    "activecampaign": {"api_token": AC_TOKEN},
}
# Faulted runs must not wait minutes: short backoffs and budgets, still the connectors' own policy.
FAST_RETRY = {"backoff_initial_s": 0.05, "max_elapsed_s": 20.0}
FAST_WAITS = {"hubspot": {"rate_limited_wait_s": 0.2}, "activecampaign": {"bulk_rate_wait_s": 0.2}}
MUTATING = {"pull", "push", "sync", "quarantine"}


def marker_sandbox(world: Any) -> SandboxServer:
    """A sandbox (limits off) whose accounts accept only the marker secrets."""
    return serve(world, extra=EMULATOR_SECRETS)


@dataclass
class Cli(Leadsync):
    """The real CLI on one config + store; every output is kept for the secret scan."""

    figures: Figures | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    @classmethod
    def make(
        cls,
        server: SandboxServer,
        folder: Path,
        figures: Figures,
        *,
        env_secrets: bool = False,
        oauth: bool = False,
        options: dict[str, Any] | None = None,
    ) -> Cli:
        made = cls.create(server, folder)
        made.figures = figures
        document = tomllib.loads(made.config.read_text(encoding="utf-8"))
        for source in document["sources"]:
            name = source["platform"]
            source["options"] = {
                **source.get("options", {}),
                **FAST_RETRY,
                **FAST_WAITS.get(name, {}),
                **(options or {}),
            }
            if name == "hubspot" and oauth:
                source["inline_secrets"] = dict(OAUTH)
            if env_secrets:
                source["secrets"] = {
                    secret: ENV_NAMES[name][secret] for secret in source.pop("inline_secrets")
                }
        made.write_config(document)
        if env_secrets:
            made.extra_env = dict(ENV_VALUES)
        return made

    def document(self) -> dict[str, Any]:
        return tomllib.loads(self.config.read_text(encoding="utf-8"))

    def write_config(self, document: dict[str, Any]) -> None:
        self.config.write_text(tomli_w.dumps(document), encoding="utf-8")

    def env(self, **extra: str) -> dict[str, str]:
        return super().env(**self.extra_env, **extra)

    def run(
        self, *args: str, check: bool = True, timeout: float = 120, fast: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = super().run(*args, check=False, timeout=timeout, fast=fast)
        self.outputs += [done.stdout, done.stderr]
        command = next((a for a in args if not a.startswith("-") and a not in {"DEBUG", "INFO"}), "")
        if self.figures is not None and done.returncode == 0 and command in MUTATING:
            self.figures.add("runs completed")
        if check and done.returncode != 0:
            raise AssertionError(
                f"leadsync {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
            )
        return done

    def json(self, *args: str, check: bool = True) -> Any:
        return json.loads(self.run(*args, "--json", check=check).stdout)


# --- faults -------------------------------------------------------------------------------------


def set_faults(server: SandboxServer, platform: str, **body: Any) -> None:
    answer = httpx.post(f"{server.base_url(platform)}/_sandbox/faults", json=body, timeout=10)
    assert answer.status_code == 200, answer.text


def clear_faults(server: SandboxServer) -> None:
    for platform in server.state.hosts:
        httpx.delete(f"{server.base_url(platform)}/_sandbox/faults", timeout=10).raise_for_status()


def faults_injected(server: SandboxServer) -> dict[str, dict[str, int]]:
    return {name: dict(stats["faults_injected"]) for name, stats in server.stats().items()}


def count_faults(server: SandboxServer, figures: Figures) -> int:
    total = sum(sum(kinds.values()) for kinds in faults_injected(server).values())
    figures.add("faults injected", total)
    return total


# --- lost and duplicated ------------------------------------------------------------------------


def store_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def losses(faulted: Path, clean: Path) -> tuple[int, int]:
    """(lost, duplicated) records of a faulted store against a clean run over the same world: events
    by (source, source id) and identities by (source, remote id), each expected exactly once; a person
    whose email appears twice (any case) is a duplicate too."""
    lost = duplicated = 0
    for sql in ("SELECT source, source_id FROM event", "SELECT source, remote_id FROM identity"):
        want, have = store_rows(clean, sql), store_rows(faulted, sql)
        lost += len(set(want) - set(have))
        duplicated += len(have) - len(set(have)) + len(set(have) - set(want))
    persons = store_rows(faulted, "SELECT count(*), count(DISTINCT lower(trim(email))) FROM person")[0]
    duplicated += persons[0] - persons[1]
    return lost, duplicated


# --- secrets -----------------------------------------------------------------------------------


def leaks(texts: Iterable[str | bytes], markers: Iterable[str] = MARKERS) -> list[str]:
    """Every (marker, excerpt) found; text and bytes (a store file read raw) alike."""
    found = []
    for text in texts:
        blob = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
        for marker in markers:
            at = blob.find(marker.encode())
            if at >= 0:
                found.append(f"{marker!r} in …{blob[max(0, at - 60) : at + 60]!r}…")
    return found


def store_texts(db: Path) -> list[bytes]:
    """The store as raw bytes (file, WAL) and as a full SQL dump (every table, audit included)."""
    blobs = [p.read_bytes() for p in db.parent.glob(db.name + "*") if p.is_file()]
    connection = sqlite3.connect(db)
    try:
        blobs.append("\n".join(connection.iterdump()).encode("utf-8", "replace"))
    finally:
        connection.close()
    return blobs
