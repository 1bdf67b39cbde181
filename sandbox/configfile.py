"""A leadsync config file that points at a running sandbox (``sandbox serve --write-config``, the demo
and the tests)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from leadsync.sandbox.webhooks import SANDBOX_WEBHOOK_SECRETS

__all__ = ["UNTHROTTLED", "write_sandbox_config"]


# Options that lift the connectors' own throttles; accepted only for loopback base URLs.
UNTHROTTLED: dict[str, dict[str, Any]] = {
    "hubspot": {"rate_limit": False},
    "activecampaign": {"requests_per_second": 0, "import_poll_s": 0.02, "bulk_rate_wait_s": 0.05},
}


def _account_options(name: str, emulator: Any) -> dict[str, Any]:
    """The emulated accounts' identifiers that the report builds contact links from (a Hub ID, a data
    centre, an account name). The links have the real platforms' form for these pretend accounts, so
    they show what a real config gives; they do not open the sandbox."""
    if name == "hubspot":
        return {"portal_id": int(emulator.portal_id)}
    if name == "mailchimp":
        dc = str(emulator.api_key).rpartition("-")[
            2
        ]  # a key ends in its data centre (Mailchimp fact sheet §1)
        return {"dc": dc} if re.fullmatch(r"[a-z]{2}[0-9]{1,3}", dc) else {}
    if name == "activecampaign":
        return {"account": "sandbox"}
    return {}


def write_sandbox_config(
    server: Any,
    path: Path,
    *,
    store_url: str | None = None,
    engine: str | None = None,
    webhooks: bool = False,
) -> None:
    """A config whose sources point at ``server`` (one per account and platform), with the sandbox's
    inline secrets (``webhooks``: also those its webhooks are signed with or carry in their URL, for
    ``leadsync webhooks serve``)."""
    import tomli_w

    from leadsync.sandbox.accounts import source_name

    sources = []
    accounts = getattr(server, "accounts", [server.state])
    for index, state in enumerate(accounts):  # one source per account and platform
        for name, host in state.hosts.items():
            source = host.emulator.source_config(server.base_url(name))
            source["name"] = source_name(name, index, len(accounts))
            source["options"] = {**source.get("options", {}), **_account_options(name, host.emulator)}
            if webhooks:  # the secrets the sandbox's webhooks are signed with (or carry in their URL)
                source["inline_secrets"] = {
                    **source.get("inline_secrets", {}),
                    **SANDBOX_WEBHOOK_SECRETS.get(name, {}),
                }
            if not host.emulator.options.rate_limits:  # a sandbox without limits: no client-side throttle
                source["options"] = {**source.get("options", {}), **UNTHROTTLED.get(name, {})}
            sources.append(source)
    document: dict[str, Any] = {
        "store": {"url": store_url or f"sqlite:///{path.with_suffix('.db').name}"},
    }
    if engine is not None:
        document["engine"] = {"kind": engine}
    document["sources"] = sources
    path.write_text(
        "# Written by `leadsync sandbox serve --write-config`: points at the local sandbox.\n"
        "# inline_secrets are accepted only because every base_url is on loopback.\n"
        + tomli_w.dumps(document),
        encoding="utf-8",
    )
    os.chmod(path, 0o600)
