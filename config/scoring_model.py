"""The scoring model: a versioned TOML file, its schema, validation and resolution.

A model file says how leadsync scores people: affinity rules on attributes, points and half-lives
per event type, page categories by URL, machine-activity filters, buying-stage windows, grade bands,
lifecycle rules and disqualifiers. ``config/models/`` ships three presets (``default``, ``pardot``,
``points``); a user may point ``--model`` (or the config) at their own file instead.

Loading happens in two passes, and both report problems the same way, as a
``ConfigError(reason, file=..., key=...)`` whose key is a dotted path into the file
(``engagement.events.email_open.half_life_days``, ``affinity.rules[2].patterns[0]``; list
indexes count from 0):

1. structure: types, ranges and unknown keys (pydantic, ``extra="forbid"`` so typos fail);
2. meaning: event types and signal names exist, regular expressions compile, stage and lifecycle
   references resolve, bands are ordered.

When a file has several problems, the error names the first and lists the rest in its message.

``ScoringModel.fingerprint`` is a hash of the validated content (not of the file's bytes): editing
a comment does not change it, changing any number does. The pipeline stores it with the scores and
re-scores everyone when it differs from the model in use.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from leadsync.connectors.errors import ConfigError
from leadsync.connectors.records import CallOutcome, EventType, MeetingOutcome

__all__ = [
    "AFFINITY_ATTRIBUTES",
    "EVENT_KEYS",
    "LIFECYCLE_LEVELS",
    "OUTCOME_KEYS",
    "PRESETS",
    "STAGES",
    "AffinityRule",
    "AffinitySettings",
    "Cap",
    "CompositeSettings",
    "Disqualifier",
    "EngagementSettings",
    "EventRule",
    "ExplainSettings",
    "GradeSettings",
    "LifecycleCondition",
    "LifecycleLevel",
    "LifecycleSettings",
    "MachineSettings",
    "PageRule",
    "ScoringModel",
    "StageRule",
    "StageSettings",
    "load_model",
    "load_model_file",
    "parse_model",
    "preset_path",
]

#: Model format this code reads. A file may say ``format = 1``; anything else is refused.
MODEL_FORMAT = 1

MODELS_DIR = Path(__file__).resolve().parent / "models"

#: Preset names, each a file ``config/models/<name>.toml``.
PRESETS: tuple[str, ...] = ("default", "pardot", "points")

#: An ``email_bounce`` whose ``properties["bounce_type"]`` says hard is scored under this key.
HARD_BOUNCE = "email_hard_bounce"

#: An event of the type whose ``properties["outcome"]`` is the outcome is scored under the key. A
#: model with no rule for a key weighs those events as their type (``meeting_booked``, ``call``), in
#: points and in signal lists alike, so models written before outcomes existed score as they did.
OUTCOME_KEYS: dict[str, tuple[EventType, str]] = {
    "meeting_completed": (EventType.MEETING_BOOKED, MeetingOutcome.COMPLETED.value),
    "meeting_no_show": (EventType.MEETING_BOOKED, MeetingOutcome.NO_SHOW.value),
    "meeting_cancelled": (EventType.MEETING_BOOKED, MeetingOutcome.CANCELLED.value),
    "call_not_connected": (EventType.CALL, CallOutcome.NOT_CONNECTED.value),
}

#: Keys allowed under ``[engagement.events]`` and in signal lists: every event type, plus hard
#: bounces and the outcomes of meetings and calls.
EVENT_KEYS: tuple[str, ...] = (*(t.value for t in EventType), HARD_BOUNCE, *OUTCOME_KEYS)

#: Page categories are referred to as ``page:<name>`` in signal lists.
PAGE_PREFIX = "page:"

STAGES: tuple[str, ...] = ("awareness", "investigation", "decision", "action")

LIFECYCLE_LEVELS: tuple[str, ...] = (
    "subscriber",
    "lead",
    "marketing_qualified_lead",
    "sales_qualified_lead",
    "opportunity",
    "customer",
)

#: Only a purchase or a won deal can put a person in the action stage.
ACTION_SIGNALS = frozenset({EventType.PURCHASE.value, EventType.DEAL_WON.value})

AFFINITY_ATTRIBUTES: tuple[str, ...] = (
    "job_title",
    "seniority",
    "industry",
    "company_size",
    "country",
    "email_domain",
)

_NAME = r"^[a-z][a-z0-9_]*$"

StageName = Literal["awareness", "investigation", "decision", "action"]
LevelName = Literal[
    "subscriber",
    "lead",
    "marketing_qualified_lead",
    "sales_qualified_lead",
    "opportunity",
    "customer",
]
Attribute = Literal["job_title", "seniority", "industry", "company_size", "country", "email_domain"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------- affinity


class AffinityRule(_Strict):
    """One persona rule. Exactly one matcher: ``patterns``, ``values``, or a ``min``/``max`` range.

    ``patterns`` are regular expressions searched case-insensitively in the attribute.
    ``values`` match whole values case-insensitively; for ``email_domain`` a value also matches
    its subdomains (``edu`` matches ``mit.edu``, ``acme.com`` matches ``eu.acme.com``).
    ``min``/``max`` (both inclusive, either may be left out) apply to ``company_size`` only.
    Within one ``group`` only the first matching rule (in file order) counts.
    ``negate`` turns the match around (``email_domain`` is *not* a free-mail domain).
    ``persona`` says whether a match counts as a matching persona attribute for the composite
    sort key; by default, when ``points > 0``.
    """

    name: str = Field(pattern=_NAME)
    label: str | None = None
    attribute: Attribute
    patterns: list[str] | None = Field(default=None, min_length=1)
    values: list[str] | None = Field(default=None, min_length=1)
    min: float | None = None
    max: float | None = None
    points: int
    group: str | None = Field(default=None, pattern=_NAME)
    negate: StrictBool = False
    persona: StrictBool | None = None

    @property
    def counts_as_persona(self) -> bool:
        return self.persona if self.persona is not None else self.points > 0


class AffinitySettings(_Strict):
    """Affinity = ``base`` + the points of the matching rules, clamped to 0–100. It never decays."""

    base: int = 0
    rules: list[AffinityRule] = Field(default_factory=list)


# ------------------------------------------------------------------------------------- engagement


class Cap(_Strict):
    """At most ``count`` events of a kind counted in each ``window_days`` window (the most recent).

    Windows are aligned to 1970-01-01 UTC, so which events count does not shift between runs.
    """

    count: int = Field(ge=1)
    window_days: float = Field(gt=0)


class EventRule(_Strict):
    """Points for one event kind.

    An event ``age`` days old is worth ``points * 0.5 ** (age / half_life_days)``; without
    ``half_life_days`` it does not decay. ``max_points`` bounds the total of this kind (its absolute
    value for negative points).
    """

    label: str | None = None
    points: float
    half_life_days: float | None = Field(default=None, gt=0)
    cap: Cap | None = None
    max_points: float | None = Field(default=None, gt=0)


class PageRule(EventRule):
    """A page category: page views whose URL matches one of ``patterns`` (searched, case-insensitive).

    A page view belongs to the first category that matches, in file order; one that matches none is
    scored as a plain ``page_view``.
    """

    patterns: list[str] = Field(min_length=1)


class EngagementSettings(_Strict):
    """Engagement = the decayed, capped points mapped to 0–100.

    ``curve = "saturating"``: ``100 * (1 - exp(-points / scale))`` (``scale`` points give 63).
    ``curve = "linear"``: ``100 * points / scale`` clamped to 0–100 (``scale`` points give 100).
    A total at or below zero gives 0.
    """

    curve: Literal["saturating", "linear"] = "saturating"
    scale: float = Field(gt=0)
    events: dict[str, EventRule] = Field(default_factory=dict)
    pages: dict[str, PageRule] = Field(default_factory=dict)


class MachineSettings(_Strict):
    """Machine activity (bots, privacy proxies, link scanners) is dropped before scoring.

    * any event the platform flagged ``properties["machine"]``, when ``honour_platform_flag``;
    * an open at most ``open_after_send_seconds`` after the ``email_sent`` of the same campaign;
    * scanner clicks: clicks on at least ``scanner_min_links`` distinct links of one email where each
      click follows the previous one within ``scanner_window_seconds``.
    """

    honour_platform_flag: StrictBool = True
    open_after_send_seconds: float = Field(default=10.0, ge=0)
    scanner_min_links: int = Field(default=3, ge=2)
    scanner_window_seconds: float = Field(default=10.0, ge=0)


# ------------------------------------------------------------------------------------------ stage


class StageRule(_Strict):
    """A stage is reached with at least ``min_count`` signal events in the last ``window_days``."""

    signals: list[str] = Field(min_length=1)
    window_days: float = Field(gt=0)
    min_count: int = Field(default=1, ge=1)


class StageSettings(_Strict):
    """The deepest stage whose rule holds; awareness otherwise. A missing stage is never reached."""

    investigation: StageRule | None = None
    decision: StageRule | None = None
    action: StageRule | None = None


# ------------------------------------------------------------------------------------------ grade


class GradeSettings(_Strict):
    """Grade = affinity letter (A–D) + engagement digit (1–4).

    ``affinity_bands`` are the lower bounds of A, B and C (below the last: D);
    ``engagement_bands`` those of 1, 2 and 3 (below the last: 4). A person keeps a better band
    from the previous run until the score falls below that band's bound minus ``margin``.
    """

    affinity_bands: tuple[int, int, int] = (75, 50, 25)
    engagement_bands: tuple[int, int, int] = (75, 50, 25)
    margin: int = Field(default=5, ge=0, le=25)


# -------------------------------------------------------------------------------------- lifecycle


class LifecycleCondition(_Strict):
    """All the given parts must hold. ``events``: any of them (within ``within_days`` if given)."""

    min_affinity: int | None = Field(default=None, ge=0, le=100)
    min_engagement: int | None = Field(default=None, ge=0, le=100)
    min_stage: StageName | None = None
    events: list[str] | None = Field(default=None, min_length=1)
    within_days: float | None = Field(default=None, gt=0)


class LifecycleLevel(_Strict):
    """A level is reached when any of its ``when`` conditions holds.

    ``blockable = false`` (customers) means disqualifiers cannot hold the person below it.
    """

    when: list[LifecycleCondition] = Field(min_length=1)
    blockable: StrictBool = True


class LifecycleSettings(_Strict):
    """The deepest level whose rule holds; subscriber otherwise.

    Hysteresis: a person already at a level (``previous``) stays while the score parts of a
    condition hold with thresholds lowered by ``margin``.
    """

    margin: int = Field(default=10, ge=0, le=50)
    lead: LifecycleLevel | None = None
    marketing_qualified_lead: LifecycleLevel | None = None
    sales_qualified_lead: LifecycleLevel | None = None
    opportunity: LifecycleLevel | None = None
    customer: LifecycleLevel | None = None


class Disqualifier(_Strict):
    """Holds the lifecycle at ``max_lifecycle`` at most, when it applies.

    It applies when one of ``events`` happened (within ``within_days`` if given), or when one of the
    affinity ``rules`` (by name) matched. Exactly one of ``events`` and ``rules``.
    """

    name: str = Field(pattern=_NAME)
    label: str | None = None
    events: list[str] | None = Field(default=None, min_length=1)
    rules: list[str] | None = Field(default=None, min_length=1)
    within_days: float | None = Field(default=None, gt=0)
    max_lifecycle: LevelName


# ------------------------------------------------------------------------------------------ other


class ExplainSettings(_Strict):
    """How many contributions per score the short reason names (the JSON reason too)."""

    top: int = Field(default=3, ge=1, le=10)


class CompositeSettings(_Strict):
    """A single sort key (never a score): stage, then fit, then engagement.

    ``stage_weight * (stage index + 1) + attribute_weight * min(attribute_cap, persona matches)
    + min(engagement_cap, engagement)``. With the defaults: actions in thousands, matching persona
    attributes in hundreds, interactions 0 to 99 (scoring-research.md §2.6).
    """

    stage_weight: int = Field(default=1000, ge=1)
    attribute_weight: int = Field(default=100, ge=1)
    attribute_cap: int = Field(default=9, ge=0)
    engagement_cap: int = Field(default=99, ge=0, le=100)


class ScoringModel(_Strict):
    """A whole scoring model. ``version`` is the model's own revision: bump it when you edit."""

    format: Literal[1] = MODEL_FORMAT
    version: int = Field(ge=1)
    name: str = Field(min_length=1)
    description: str = ""
    affinity: AffinitySettings = Field(default_factory=AffinitySettings)
    engagement: EngagementSettings
    machine: MachineSettings = Field(default_factory=MachineSettings)
    stage: StageSettings = Field(default_factory=StageSettings)
    grade: GradeSettings = Field(default_factory=GradeSettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    disqualifiers: list[Disqualifier] = Field(default_factory=list)
    explain: ExplainSettings = Field(default_factory=ExplainSettings)
    composite: CompositeSettings = Field(default_factory=CompositeSettings)

    @property
    def fingerprint(self) -> str:
        """sha256 of the validated content: stable across formatting, comments and key order.

        Computed on every access (about 0.1 ms), never cached on the instance: ``model_copy(update=...)``
        copies the instance dict, and a cached value would survive into a changed copy.
        """
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


# ---------------------------------------------------------------------------------------- loading


def preset_path(name: str) -> Path:
    """The file of a preset, or ConfigError naming the presets there are."""
    if name not in PRESETS:
        raise ConfigError(f"unknown scoring model preset {name!r}; presets: {', '.join(PRESETS)}", file=name)
    return MODELS_DIR / f"{name}.toml"


def load_model(ref: str | Path | None = None) -> ScoringModel:
    """Resolve ``--model`` / the config value: a preset name, a file path, or None for ``default``."""
    if ref is None:
        ref = "default"
    if isinstance(ref, str) and ref in PRESETS:
        return load_model_file(preset_path(ref))
    path = Path(ref)
    if not path.exists() and path.suffix != ".toml" and "/" not in str(ref) and "\\" not in str(ref):
        raise ConfigError(
            f"no scoring model preset or file named {str(ref)!r}; presets: {', '.join(PRESETS)}",
            file=str(ref),
        )
    return load_model_file(path)


def load_model_file(path: str | Path) -> ScoringModel:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("scoring model file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read scoring model file: {exc}", file=str(path)) from exc
    return parse_model(text, file=str(path))


def parse_model(text: str, *, file: str = "<model>") -> ScoringModel:
    """Parse and validate a model from TOML text. ``file`` is only used in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=file) from exc
    return validate_model(data, file=file)


def validate_model(data: dict[str, Any], *, file: str = "<model>") -> ScoringModel:
    try:
        model = ScoringModel.model_validate(data)
    except ValidationError as exc:
        _raise(file, [(_dotted(err["loc"]), _reason(err)) for err in exc.errors()])
    problems = _semantic_problems(model)
    if problems:
        _raise(file, problems)
    return model


def _raise(file: str, problems: list[tuple[str, str]]) -> None:
    key, reason = problems[0]
    if len(problems) > 1:
        rest = "; ".join(f"{k}: {r}" for k, r in problems[1:6])
        more = f" (and {len(problems) - 6} more)" if len(problems) > 6 else ""
        reason = f"{reason} [also: {rest}{more}]"
    raise ConfigError(reason, file=file, key=key)


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _reason(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "bool_type":
        return f"must be true or false (a TOML boolean, without quotes), not {err.get('input')!r}"
    value = err.get("input")
    shown = "" if isinstance(value, (dict, list)) else f" (got {value!r})"
    return f"{err['msg']}{shown}"


def _pattern_problem(pattern: str) -> str | None:
    try:
        re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        return f"bad regular expression {pattern!r}: {exc}"
    return None


def _semantic_problems(model: ScoringModel) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    known_events = set(EVENT_KEYS)

    # affinity rules
    names: set[str] = set()
    for i, rule in enumerate(model.affinity.rules):
        at = f"affinity.rules[{i}]"
        if rule.name in names:
            problems.append((f"{at}.name", f"duplicate rule name {rule.name!r}"))
        names.add(rule.name)
        matchers = [m for m in ("patterns", "values") if getattr(rule, m) is not None]
        has_range = rule.min is not None or rule.max is not None
        if has_range:
            matchers.append("min/max")
        if len(matchers) != 1:
            problems.append((at, f"needs exactly one of patterns, values, min/max (has {len(matchers)})"))
        if rule.attribute == "company_size" and (rule.patterns is not None or rule.values is not None):
            problems.append((at, "company_size takes a min/max range, not patterns or values"))
        if has_range and rule.attribute != "company_size":
            problems.append((at, f"min/max apply to company_size only, not {rule.attribute}"))
        if rule.min is not None and rule.max is not None and rule.min > rule.max:
            problems.append((f"{at}.max", f"max {rule.max} is below min {rule.min}"))
        for j, pattern in enumerate(rule.patterns or ()):
            if (why := _pattern_problem(pattern)) is not None:
                problems.append((f"{at}.patterns[{j}]", why))
        for j, value in enumerate(rule.values or ()):
            if not value.strip():
                problems.append((f"{at}.values[{j}]", "empty value"))

    # engagement
    for key in model.engagement.events:
        if key not in known_events:
            problems.append(
                (f"engagement.events.{key}", f"unknown event type {key!r}; known: {', '.join(EVENT_KEYS)}")
            )
    for name, page in model.engagement.pages.items():
        at = f"engagement.pages.{name}"
        if not re.match(_NAME, name):
            problems.append((at, "page category names are lowercase letters, digits and _"))
        for j, pattern in enumerate(page.patterns):
            if (why := _pattern_problem(pattern)) is not None:
                problems.append((f"{at}.patterns[{j}]", why))
    signals = known_events | {f"{PAGE_PREFIX}{name}" for name in model.engagement.pages}

    def check_signals(at: str, keys: list[str] | None) -> None:
        for j, key in enumerate(keys or ()):
            if key not in signals:
                hint = " (page categories are written page:<name>)" if key in model.engagement.pages else ""
                problems.append((f"{at}[{j}]", f"unknown event type or page category {key!r}{hint}"))

    # stage
    for stage in STAGES[1:]:
        rule = getattr(model.stage, stage)
        if rule is None:
            continue
        check_signals(f"stage.{stage}.signals", rule.signals)
        if stage == "action":
            for j, key in enumerate(rule.signals):
                if key in signals and key not in ACTION_SIGNALS:
                    problems.append(
                        (f"stage.action.signals[{j}]", f"only purchase or deal_won reach action, not {key!r}")
                    )

    # grade
    for field in ("affinity_bands", "engagement_bands"):
        bands = getattr(model.grade, field)
        if not (100 >= bands[0] > bands[1] > bands[2] > 0):
            problems.append((f"grade.{field}", f"need 100 >= b1 > b2 > b3 > 0 (got {list(bands)})"))

    # lifecycle
    for level in LIFECYCLE_LEVELS[1:]:
        rule = getattr(model.lifecycle, level)
        if rule is None:
            continue
        for i, cond in enumerate(rule.when):
            at = f"lifecycle.{level}.when[{i}]"
            if not cond.model_fields_set - {"within_days"}:
                problems.append(
                    (at, "empty condition: give min_affinity, min_engagement, min_stage or events")
                )
            if cond.within_days is not None and cond.events is None:
                problems.append((f"{at}.within_days", "within_days needs events"))
            check_signals(f"{at}.events", cond.events)

    # disqualifiers
    seen: set[str] = set()
    for i, dq in enumerate(model.disqualifiers):
        at = f"disqualifiers[{i}]"
        if dq.name in seen:
            problems.append((f"{at}.name", f"duplicate disqualifier name {dq.name!r}"))
        seen.add(dq.name)
        if (dq.events is None) == (dq.rules is None):
            problems.append((at, "needs exactly one of events, rules"))
        if dq.within_days is not None and dq.events is None:
            problems.append((f"{at}.within_days", "within_days needs events"))
        check_signals(f"{at}.events", dq.events)
        for j, rule_name in enumerate(dq.rules or ()):
            if rule_name not in names:
                problems.append((f"{at}.rules[{j}]", f"no affinity rule named {rule_name!r}"))
    return problems
