"""A leadsync config file that points at a running sandbox (``sandbox serve --write-config``, the demo
and the tests)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from leadsync.sandbox.webhooks import SANDBOX_WEBHOOK_SECRETS

__all__ = ["UNTHROTTLED", "write_sandbox_config"]


# Options that lift the connectors' own throttles; accepted only for loopback base URLs.
UNTHROTTLED: dict[str, dict[str, Any]] = {
    "hubspot": {"rate_limit": False},
    "activecampaign": {"requests_per_second": 0, "import_poll_s": 0.02, "bulk_rate_wait_s": 0.05},
}


def write_sandbox_config(
    server: Any, path: Path, *, store_url: str | None = None, webhooks: bool = False
) -> None:
    """A config whose sources point at ``server``, with the sandbox's inline secrets (``webhooks``:
    also those its webhooks are signed with or carry in their URL, for ``leadsync webhooks serve``)."""
    import tomli_w

    sources = []
    for name, host in server.state.hosts.items():
        source = host.emulator.source_config(server.base_url(name))
        if webhooks:  # the secrets the sandbox's webhooks are signed with (or carry in their URL)
            source["inline_secrets"] = {
                **source.get("inline_secrets", {}),
                **SANDBOX_WEBHOOK_SECRETS.get(name, {}),
            }
        if not host.emulator.options.rate_limits:  # a sandbox without limits: no client-side throttle either
            source["options"] = {**source.get("options", {}), **UNTHROTTLED.get(name, {})}
        sources.append(source)
    document = {
        "store": {"url": store_url or f"sqlite:///{path.with_suffix('.db').name}"},
        "sources": sources,
    }
    path.write_text(
        "# Written by `leadsync sandbox serve --write-config`: points at the local sandbox.\n"
        "# inline_secrets are accepted only because every base_url is on loopback.\n"
        + tomli_w.dumps(document),
        encoding="utf-8",
    )
    os.chmod(path, 0o600)
