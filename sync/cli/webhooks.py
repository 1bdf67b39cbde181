"""``webhooks serve`` and ``webhooks setup``: real time through the platforms' webhooks (issue 22)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

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
    """Receive the platforms' webhooks on /webhooks/SOURCE and turn each into that person's new scores on every platform, until SIGTERM or Ctrl-C."""
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
    """Create or update SOURCE's webhook subscriptions; for a HubSpot private app, print the steps to follow."""
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
