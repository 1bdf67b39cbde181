"""``leads`` and ``explain``: the ranked leads, and what made one person's stored scores."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich.markup import escape

from leadsync.config.scoring_model import LIFECYCLE_LEVELS
from leadsync.sync.cli.app import (
    EXIT_FAILED,
    JsonOpt,
    ModelOpt,
    WideOpt,
    app,
    engine_for,
    err,
    errors,
    model_for,
    out,
    print_json,
)
from leadsync.sync.cli.tables import Column, print_table

GRADE = re.compile(r"^[A-D][1-4]?$")

#: ``leads`` at 80 columns keeps the rank, the email, the grade and the reason (which names the
#: lifecycle and stage too); the numbers go first, then the stage, then the lifecycle.
LEADS_COLUMNS = (
    Column("#", justify="right"),
    Column("email"),
    Column("grade"),
    Column("affinity", drop=2, justify="right"),
    Column("engagement", drop=3, justify="right"),
    Column("stage", drop=4),
    Column("lifecycle", drop=1),
)


def leads_rows(rows: list[dict[str, Any]], *, reason: bool) -> list[list[str]]:
    return [
        [
            str(rank),
            row["email"],
            row["grade"],
            f"{row['affinity']:.0f}",
            f"{row['engagement']:.0f}",
            row["stage"],
            row["lifecycle"],
            *([row["reason"]] if reason else []),
        ]
        for rank, row in enumerate(rows, 1)
    ]


def print_leads(title: str, rows: list[dict[str, Any]], *, reason: bool, wide: bool = False) -> None:
    """Ranked leads as a table (``leads``, and the demo's leaderboard without the reason)."""
    columns = (*LEADS_COLUMNS, Column("reason", fold=True)) if reason else LEADS_COLUMNS
    print_table(out, columns, leads_rows(rows, reason=reason), title=title, wide=wide)


def _grade(value: str | None) -> str | None:
    if value is not None and not GRADE.match(value.upper()):
        raise typer.BadParameter(
            f"{value!r} is neither an affinity band (A, B, C, D) nor a grade (A1 ... D4, e.g. B2)"
        )
    return None if value is None else value.upper()


def _lifecycle(value: str | None) -> str | None:
    if value is not None and value not in LIFECYCLE_LEVELS:
        raise typer.BadParameter(
            f"{value!r} is not a lifecycle stage; use one of {', '.join(LIFECYCLE_LEVELS)}"
        )
    return value


@app.command()
def leads(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many to show.")] = 20,
    grade: Annotated[
        str | None,
        typer.Option(
            "--grade", callback=_grade, help="Only this affinity band (A, B, C, D) or grade (A1 ... D4)."
        ),
    ] = None,
    lifecycle: Annotated[
        str | None,
        typer.Option(
            "--lifecycle",
            callback=_lifecycle,
            help=f"Only this lifecycle stage: {', '.join(LIFECYCLE_LEVELS)}.",
        ),
    ] = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """List the best leads, ranked by score, with the reason for each."""
    from leadsync.sync.reports import leads as ranked

    with errors():
        config = ctx.obj.load()
        rows = ranked(engine_for(config), limit=limit, grade=grade, lifecycle=lifecycle)
    if as_json:
        print_json(rows)
        return
    print_leads("leads", rows, reason=True, wide=wide)
    if not rows:
        if grade or lifecycle:
            out.print("No scored person matches these filters.", markup=False)
        else:
            out.print("No scored persons yet: run `leadsync sync`.", markup=False)


@app.command()
def explain(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The person's email address.")],
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a person's stored scores (what was written to the platforms) and every contribution that
    produced them; the contributions sum to the scores, and values kept by hysteresis are named."""
    from leadsync.sync.reports import stored_scores

    with errors():
        config = ctx.obj.load()
        scoring_model = model_for(config, model)
        explained = stored_scores(engine_for(config), scoring_model, email)
    if explained is None:
        err.print(f"No person with email {escape(repr(email))} in the store.")
        raise typer.Exit(EXIT_FAILED)
    if not explained.stored:
        err.print(f"{escape(explained.email)} has not been scored yet: run `leadsync score`.")
        raise typer.Exit(EXIT_FAILED)
    if as_json:
        print_json(_explanation_json(explained, scoring_model))
        return
    out.print(render_stored(explained, scoring_model), markup=False, highlight=False, soft_wrap=True)


def _explanation_json(explained: Any, model: Any) -> dict[str, Any]:
    stored, replay = explained.stored, explained.replay
    return {
        "email": explained.email,
        "scored_at": stored["scored_at"],
        "affinity": int(stored["affinity"]),
        "engagement": int(stored["engagement"]),
        "stage": stored["stage"],
        "grade": stored["grade"],
        "lifecycle": stored["lifecycle"],
        "composite": int(stored["composite"]),
        "disqualified": replay.disqualified_reason if replay is not None else bool(stored["disqualified"]),
        "reason": stored["reason"],
        "contributions": stored["contributions"],
        "previous": explained.previous,
        "held": {
            name: {"stored": kept, "rules_alone": fresh} for name, (kept, fresh) in explained.held.items()
        },
        "reproduced": replay is not None,
        "model": {
            "fingerprint": stored["model_fingerprint"],
            "same_as": None if not explained.same_model else {"name": model.name, "version": model.version},
        },
    }


def _labels(model: Any) -> dict[tuple[str, str], str]:
    labels = {("affinity", rule.name): rule.label or rule.name for rule in model.affinity.rules}
    labels[("affinity", "base")] = "base"
    for key, rule in model.engagement.events.items():
        labels[("engagement", key)] = rule.label or key
    for name, page in model.engagement.pages.items():
        labels[("engagement", f"page:{name}")] = page.label or f"{name} page"
    return labels


def render_stored(explained: Any, model: Any) -> str:
    """The stored scores, the contributions that produced them (they sum to the scores) and what
    hysteresis kept, for ``leadsync explain``."""
    stored, replay = explained.stored, explained.replay
    lines = [
        f"{explained.email}: scores stored at {stored['scored_at'].isoformat()} "
        f"(model fingerprint {stored['model_fingerprint'][:12]})",
        f"grade {stored['grade']}, lifecycle {stored['lifecycle']}, stage {stored['stage']}, "
        f"composite {stored['composite']:.0f}",
    ]
    if not explained.same_model:
        lines.append(
            f"(scored with another model than {model.name!r} version {model.version}: "
            "`leadsync score` re-scores everyone with the current one)"
        )
    elif replay is None:
        lines.append(
            "(the store changed since these scores were written: `leadsync score` brings them up to date)"
        )
    if explained.held:
        margin = {"grade": model.grade.margin, "lifecycle": model.lifecycle.margin}
        lines.append("")
        lines.append(
            "kept by hysteresis (the previous run's value, while the score stays within the margin):"
        )
        for name, (kept, fresh) in explained.held.items():
            why = (
                "the exact value is within one point of it"
                if name == "engagement"
                else f"margin {margin[name]} below the threshold"
            )
            lines.append(f"  {name} {kept} (the rules alone give {fresh}; {why})")
    labels = _labels(model)
    details = {(c.score, c.rule): c for c in replay.contributions} if replay is not None else {}
    for score in ("affinity", "engagement"):
        parts = [c for c in stored["contributions"] if c["score"] == score]
        header = f"{score} {stored[score]:.0f}"
        if score == "engagement" and replay is not None:
            header += f" (engagement points {replay.engagement_points:.2f} before the 0-100 mapping)"
        lines += ["", header]
        for c in parts:
            known = details.get((score, c["rule"]))
            label = known.label if known is not None else labels.get((score, c["rule"]), c["rule"])
            if score == "affinity":
                detail = f"{known.value!r}" if known is not None and known.value is not None else ""
            else:
                when = (c["last_seen"] or "-")[:10]
                capped = f", {known.capped} over cap" if known is not None and known.capped else ""
                detail = f"{c['count']} event{'s' if c['count'] != 1 else ''}{capped}, last {when}"
            lines.append(f"  {c['points']:+4d}  {label:<28} raw {c['raw_points']:+9.2f}  {detail}".rstrip())
        lines.append(f"  {sum(c['points'] for c in parts):4d}  = {score}")
    if replay is not None and replay.disqualified:
        lines += ["", f"disqualified: {replay.disqualified_reason}"]
    if replay is not None and replay.machine_filtered:
        lines.append(f"machine activity ignored: {replay.machine_filtered} event(s)")
    lines += ["", f"reason: {stored['reason']}"]
    return "\n".join(lines)
