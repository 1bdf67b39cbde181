"""``sandbox world`` and ``sandbox serve``: the local emulators of the three platforms."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from leadsync.connectors.errors import ConfigError
from leadsync.sandbox.configfile import write_sandbox_config
from leadsync.sync.cli.app import EXIT_CONFIG, app, err, errors, out

sandbox_app = typer.Typer(
    help="Local emulators of the three platforms, for trying leadsync and for tests.", no_args_is_help=True
)
app.add_typer(sandbox_app, name="sandbox")

NowOpt = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="The world's last moment (ISO 8601, UTC when no offset; default: now). "
        "Same seed and --now, same world, byte for byte.",
    ),
]


def world_now(text: str | None) -> datetime:
    """The moment a generated world runs up to: ``--now``, else the current time (to the second),
    so that the first run scores fresh activity rather than a month-old world."""
    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--now {text!r}: write a time as 2026-11-01T00:00:00+00:00", key="--now") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


@sandbox_app.command("world")
def sandbox_world(
    out_file: Annotated[Path, typer.Option("--out", "-o", help="JSON Lines file to write.")],
    contacts: Annotated[int, typer.Option("--contacts", "-n", min=1, help="Number of persons.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Same seed, same world, byte for byte.")] = 1,
    now: NowOpt = None,
) -> None:
    """Generate a deterministic world (persons, campaigns, the 180 days of engagement up to now) as JSON Lines."""
    from leadsync.sandbox.world import generate_world

    with errors():
        world = generate_world(contacts, seed, now=world_now(now))
        world.write(out_file)
    out.print(
        f"Wrote {out_file}: {len(world.persons)} persons, {world.event_count} events, "
        f"{len(world.campaigns)} campaigns (seed {seed}, up to {world.now.isoformat()}).",
        markup=False,
    )


@sandbox_app.command("serve")
def sandbox_serve(
    contacts: Annotated[
        int, typer.Option("--contacts", "-n", min=1, help="Generate a world of this many persons.")
    ] = 2000,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of the generated world.")] = 1,
    now: NowOpt = None,
    world_file: Annotated[
        Path | None, typer.Option("--world", help="Serve this world file instead of generating one.")
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback by default).")
    ] = "127.0.0.1",
    hubspot_port: Annotated[int, typer.Option("--hubspot-port")] = 8701,
    mailchimp_port: Annotated[int, typer.Option("--mailchimp-port")] = 8702,
    activecampaign_port: Annotated[int, typer.Option("--activecampaign-port")] = 8703,
    rate_limits: Annotated[
        str, typer.Option("--rate-limits", help="'on' (the platforms' defaults) or 'off' (for speed).")
    ] = "on",
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", min=0, help="Delay added to every API request.")
    ] = 0.0,
    hubspot_tier: Annotated[
        str, typer.Option("--hubspot-tier", help="free, starter, professional or enterprise.")
    ] = "free",
    write_config: Annotated[
        Path | None,
        typer.Option("--write-config", help="Write a leadsync config that points at this sandbox."),
    ] = None,
    store_url: Annotated[
        str | None, typer.Option("--store-url", help="Store URL to put in the written config.")
    ] = None,
    accounts: Annotated[
        int,
        typer.Option(
            "--accounts",
            min=1,
            help="Serve this many independent accounts per platform on the same ports, each named by "
            "its own token or API key, with its own world (seed + account number) and rate limits; "
            "--write-config writes one source per account.",
        ),
    ] = 1,
    days: Annotated[
        int, typer.Option("--days", min=1, help="Days of activity history in each generated world.")
    ] = 180,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine", help="[engine] kind to put in the written config: embedded or procrastinate."
        ),
    ] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option(
            "--webhook-url",
            help="Send the platforms' signed webhooks to the leadsync receiver at this base URL "
            "(e.g. http://127.0.0.1:8780); the written config then holds their secrets.",
        ),
    ] = None,
) -> None:
    """Run the HubSpot, Mailchimp and ActiveCampaign emulators on loopback until Ctrl-C."""
    from leadsync.sandbox.server import SandboxServer
    from leadsync.sandbox.world import World, generate_world

    if rate_limits not in {"on", "off"}:
        err.print("--rate-limits must be 'on' or 'off'")
        raise typer.Exit(EXIT_CONFIG)
    if engine not in {None, "embedded", "procrastinate"}:
        err.print(f"--engine {engine!r}: choose embedded or procrastinate")
        raise typer.Exit(EXIT_CONFIG)
    if world_file and accounts > 1:
        err.print("--world serves one account; use --contacts and --seed with --accounts")
        raise typer.Exit(EXIT_CONFIG)
    if webhook_url is not None and not webhook_url.startswith(("http://", "https://")):
        err.print(f"--webhook-url must be an http(s) URL such as http://127.0.0.1:8780, got {webhook_url!r}")
        raise typer.Exit(EXIT_CONFIG)
    with errors():
        moment = world_now(now)
        if world_file:
            worlds = [World.read(world_file)]
        else:
            worlds = [
                generate_world(contacts, seed + index, now=moment, days=days) for index in range(accounts)
            ]
        server = SandboxServer.for_accounts(
            worlds,
            ports={
                "hubspot": hubspot_port,
                "mailchimp": mailchimp_port,
                "activecampaign": activecampaign_port,
            },
            rate_limits=rate_limits == "on",
            latency_ms=latency_ms,
            extra={"hubspot": {"tier": hubspot_tier}},
        )
        server.host = host
        server.start()
        if webhook_url is not None:
            from leadsync.sandbox.webhooks import point_at_receiver

            point_at_receiver(server, webhook_url)
    try:
        if write_config:
            write_sandbox_config(
                server, write_config, store_url=store_url, engine=engine, webhooks=webhook_url is not None
            )
            out.print(f"Wrote {write_config}: run `leadsync --config {write_config} check`.", markup=False)
        for name in server.state.hosts:
            out.print(
                f"{name:>15}: {server.base_url(name)}   (admin: {server.base_url(name)}/_sandbox/stats)",
                markup=False,
            )
        persons = sum(len(w.persons) for w in worlds)
        out.print(f"Serving {len(worlds)} account(s) per platform, {persons} persons. Ctrl-C to stop.")
        _wait_forever()
    finally:
        server.stop()


def _wait_forever() -> None:
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
