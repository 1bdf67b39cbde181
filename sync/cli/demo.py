"""``demo``: the whole pipeline against a local sandbox, start to finish."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from leadsync.config.settings import load_config
from leadsync.sandbox.configfile import write_sandbox_config
from leadsync.sync.cli.app import EXIT_FAILED, app, engine_for, errors, out
from leadsync.sync.cli.check import probe_source
from leadsync.sync.cli.leads import print_leads
from leadsync.sync.cli.pipeline import open_quarantine_count, run_steps, summary_table
from leadsync.sync.cli.progress import progress_bars, reporter_for
from leadsync.sync.cli.sandbox import world_now
from leadsync.sync.logsetup import register_secrets


@app.command()
def demo(
    folder: Annotated[Path, typer.Option("--dir", help="Where to put the demo's config and store.")] = Path(
        ".demo"
    ),
    contacts: Annotated[
        int, typer.Option("--contacts", "-n", min=10, help="Persons in the generated world.")
    ] = 400,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of the generated world.")] = 1,
    rate_limits: Annotated[
        str, typer.Option("--rate-limits", help="'on' (the platforms' defaults) or 'off'.")
    ] = "on",
) -> None:
    """Run the whole pipeline against a local sandbox: check, sync, leaderboard, read-back, re-sync."""
    from leadsync.config.scoring_model import load_model
    from leadsync.sandbox.server import SandboxServer
    from leadsync.sandbox.world import generate_world
    from leadsync.sync.demo import demo_dir, free_port, read_back, real_time
    from leadsync.sync.reports import leads as ranked

    folder = demo_dir(folder)
    out.rule("leadsync demo")
    now = world_now(None)
    out.print(
        f"Generating a world of {contacts} persons (seed {seed}) up to {now.isoformat()} ...", markup=False
    )
    world = generate_world(contacts, seed, now=now)
    server = SandboxServer.for_world(
        world,
        ports={"hubspot": free_port(), "mailchimp": free_port(), "activecampaign": free_port()},
        rate_limits=rate_limits != "off",
    )
    with server, errors():
        config_file = folder / "leadsync.toml"
        write_sandbox_config(
            server, config_file, store_url=f"sqlite:///{folder / 'leadsync.db'}", webhooks=True
        )
        out.print(
            f"Sandbox on {', '.join(server.base_url(n) for n in server.state.hosts)}; config in {config_file}",
            markup=False,
        )
        config = load_config(config_file)
        register_secrets(config)
        for source in config.sources:
            result = probe_source(config, source)
            out.print(
                f"check {escape(source.name)}: {'[green]ok[/green]' if result['ok'] else '[red]FAIL[/red]'} "
                f"{escape(result['detail'])}"
            )
            if not result["ok"]:
                raise typer.Exit(EXIT_FAILED)
        engine = engine_for(config)
        model = load_model(config.scoring.model)
        with progress_bars(True) as progress:
            pulls, counts, pushes = run_steps(
                engine, config, pull=True, score=model, push=True, reporter=reporter_for(progress)
            )
        out.print(summary_table(pulls, counts, pushes, open_quarantine_count(engine)))
        top = ranked(engine, limit=10)
        print_leads("Leaderboard: the 10 best leads", top, reason=False)
        checked = read_back(engine, config, [row["email"] for row in top])
        out.print(
            f"Read-back: {checked.matched} of {checked.checked} written values read back from the platforms match the store."
        )
        for problem in checked.mismatches[:10]:
            out.print(f"  [red]mismatch[/red] {escape(str(problem))}", highlight=False)
        before = {name: host.stats.snapshot()["write_requests"] for name, host in server.state.hosts.items()}
        _, _, again = run_steps(engine, config, pull=False, score=None, push=True)
        after = {name: host.stats.snapshot()["write_requests"] for name, host in server.state.hosts.items()}
        writes = sum(after[n] - before[n] for n in after)
        out.print(
            f"Second push with nothing changed: {sum(r.planned for r in again)} updates planned, {writes} write requests."
        )
        moved = real_time(server, engine, config, model)
        if moved.skipped:
            out.print("Real time: nobody in this world is on HubSpot; the webhook step is skipped.")
        else:
            out.print(
                f"Real time: {moved.email} viewed the pricing page; engagement {moved.before['engagement']:.0f} -> "
                f"{moved.after.get('engagement', 0):.0f}, read back from {moved.read.checked if moved.read else 0} "
                f"platform record(s) {'in' if moved.ok else 'NOT within'} {moved.seconds:.1f} s (webhooks, issue 22)",
                markup=False,
            )
        realtime = moved.ok
        ok = (
            all(r.ok for r in pulls + pushes)
            and not checked.mismatches
            and checked.checked > 0
            and writes == 0
            and realtime
        )
        out.rule("[green]demo passed[/green]" if ok else "[red]demo found problems[/red]")
        out.print(
            f"Look around: leadsync --config {config_file} leads | status | explain EMAIL | report  (the sandbox stops now)",
            markup=False,
        )
    if not ok:
        raise typer.Exit(EXIT_FAILED)
