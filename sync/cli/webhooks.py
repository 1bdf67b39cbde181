"""``webhooks serve`` and ``webhooks setup``: real time through the platforms' webhooks (issue 22)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated, Any

import typer

from leadsync.sync.cli.app import ModelOpt, app, engine_for, errors, model_for, out

webhooks_app = typer.Typer(
    help="Score a person within seconds of what they do: receive the platforms' webhooks.",
    no_args_is_help=True,
)
app.add_typer(webhooks_app, name="webhooks")

log = logging.getLogger("leadsync.webhooks")


@webhooks_app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default: the config's webhooks.host).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="Port (default: the config's webhooks.port, 8780)."),
    ] = None,
    process: Annotated[
        bool,
        typer.Option(
            "--process/--no-process",
            help="Work the queued deliveries here (default), or only receive and queue them.",
        ),
    ] = True,
    model: ModelOpt = None,
) -> None:
    """Receive HubSpot, Mailchimp and ActiveCampaign webhooks on /webhooks/SOURCE (or SOURCE/TOKEN) and turn
    each into that person's new scores on every platform, until SIGTERM or Ctrl-C."""
    from leadsync.sync.webhooks.service import WebhookService

    if ctx.parent is not None and ctx.parent.params.get("log_level") == "WARNING":
        logging.getLogger("leadsync").setLevel(logging.INFO)
    with errors():
        config = ctx.obj.load()
        service = WebhookService(
            engine_for(config), config, model_for(config, model), host=host, port=port, process=process
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        service.start()
        out.print(
            f"webhook receiver on {service.url} (POST /webhooks/SOURCE); Ctrl-C to stop", highlight=False
        )
        try:
            while not stop.wait(0.5):
                pass
        finally:
            service.stop()


@webhooks_app.command("setup")
def setup(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The source to subscribe (a configured source's name).")],
    url: Annotated[
        str | None,
        typer.Option(
            "--url", help="The receiver's public base URL (default: the config's webhooks.public_url)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be created or updated; change nothing.")
    ] = False,
) -> None:
    """Create or update SOURCE's webhook subscriptions (Mailchimp list webhooks, ActiveCampaign
    webhooks); for a HubSpot private app, print the steps to follow in its settings."""
    from leadsync.sync.webhooks.setup import receiver_url, set_up

    with errors():
        config = ctx.obj.load()
        chosen = config.source(source)
        target = receiver_url(config, chosen, url)
        steps = set_up(config, chosen, target, dry_run=dry_run)
        # the token is a secret: never printed
        hidden = not target.endswith(f"/webhooks/{chosen.name}")
        shown = target.rsplit("/", 1)[0] + "/<webhook_token>" if hidden else target
        for step in steps:
            if step.action == "manual":
                for line in step.detail["steps"]:
                    out.print(line.replace(target, shown), highlight=False, markup=False)
                continue
            verb = (
                {"create": "would create", "update": "would update"}.get(step.action, step.action)
                if dry_run
                else step.action
            )
            out.print(
                f"{chosen.name}: {step.target}: {verb} webhook -> {shown}", highlight=False, markup=False
            )


def realtime_demo(server: Any, engine: Any, config: Any, model: Any, emails: list[str]) -> bool:
    """``leadsync demo``'s real-time step: one person views the pricing page (on HubSpot, three
    times), HubSpot's signed webhook reaches the receiver, and their new scores are read back from
    every platform holding them. True when they arrived within ``REALTIME_S`` seconds."""
    import time

    from sqlalchemy import select

    from leadsync.sandbox.webhooks import WebhookTarget, receiver_url
    from leadsync.sync.demo import read_back
    from leadsync.sync.store.models import Person, Score

    def explain_person(_: Any, address: str) -> dict[str, Any]:
        with engine.connect() as connection:
            row = connection.execute(
                select(Score.engagement, Score.stage)
                .join(Person, Person.id == Score.person_id)
                .where(Person.email == address)
            ).one()
        return {"engagement": row.engagement, "stage": row.stage}

    from leadsync.sync.webhooks.service import WebhookService

    person = next(
        (
            p
            for p in server.state.world.persons
            if str(p.platforms[0]) == "hubspot" and len(p.platforms) > 1 and p.email.lower() in emails
        ),
        None,
    ) or next(p for p in server.state.world.persons if str(p.platforms[0]) == "hubspot")
    email = person.email.lower()
    with WebhookService(engine, config, model, port=0) as service:
        for name in server.state.hosts:
            secret = (config.source(name).inline_secrets or {}).get("webhook_secret")
            server.state.webhooks.configure(
                name, WebhookTarget(receiver_url(service.url, name), secret=secret)
            )
        before = explain_person(engine, email)
        out.print(
            f"Real time: {email} views the pricing page; engagement now {before['engagement']:.0f}, "
            f"stage {before['stage']} (webhooks to {service.url})",
            markup=False,
        )
        started = time.monotonic()
        for _ in range(3):
            server.state.act(email, "page_view", platform="hubspot", url="https://example.com/pricing")
        after, checked = before, None
        while time.monotonic() - started < REALTIME_S:
            after = explain_person(engine, email)
            if after["engagement"] != before["engagement"]:
                checked = read_back(engine, config, [email])
                if checked.checked and not checked.mismatches:
                    break
            time.sleep(0.1)
        took = time.monotonic() - started
        for name in server.state.hosts:
            server.state.webhooks.configure(name, None)
    ok = checked is not None and checked.checked > 0 and not checked.mismatches
    out.print(
        f"  engagement {before['engagement']:.0f} -> {after['engagement']:.0f}, stage {before['stage']} -> "
        f"{after['stage']}, read back from {checked.checked if checked else 0} platform(s) "
        f"{'in' if ok else 'NOT within'} {took:.1f} s",
        markup=False,
    )
    return ok


REALTIME_S = 15.0
