"""leadsync.toml: what it holds, how it is validated, and where secrets come from.

The file names *which environment variables* hold each source's secrets, never the secrets
themselves. The only exception is the sandbox: a source whose base URL is on loopback may carry
``inline_secrets`` (``leadsync sandbox serve --write-config`` writes those); anywhere else they
are refused.

Booleans are TOML booleans only (``true``/``false``): ``"yes"``, ``1`` or ``"true"`` are refused,
never read as true.

Every problem is a ``ConfigError`` naming the file, the key (``sources[1].platform``) and what is
wrong, so the CLI can print one line and exit non-zero without a traceback.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from leadsync.connectors.base import SourceSettings
from leadsync.connectors.catalog import stream_names, unknown_streams
from leadsync.connectors.errors import ConfigError
from leadsync.connectors.records import EventType, Platform

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "EnvSettings",
    "LeadsyncConfig",
    "SourceConfig",
    "config_path",
    "load_config",
    "missing_secrets",
    "parse_duration",
    "resolve_source",
]

DEFAULT_CONFIG_PATH = Path("leadsync.toml")

# Which secrets each platform needs: each inner tuple is one acceptable set.
REQUIRED_SECRETS: dict[Platform, tuple[tuple[str, ...], ...]] = {
    # hubspot.md §1: a private-app token, or an OAuth app's client id/secret and a refresh token.
    Platform.HUBSPOT: (("token",), ("client_id", "client_secret", "refresh_token")),
    # mailchimp.md §1: one API key (its "-us6" suffix names the data centre).
    Platform.MAILCHIMP: (("api_key",),),
    # activecampaign.md §1: the Api-Token header.
    Platform.ACTIVECAMPAIGN: (("api_token",),),
}

# Secrets a source may name for the webhook receiver (issue 22), none of them required:
# ``webhook_secret`` signs deliveries (HubSpot: the app's client secret, hubspot.md §6; Mailchimp:
# the signing secret, mailchimp.md §10); ``webhook_token`` is the hard-to-guess path segment where
# the platform cannot sign (ActiveCampaign, activecampaign.md §9; Mailchimp without signing).
WEBHOOK_SECRETS: dict[Platform, tuple[str, ...]] = {
    Platform.HUBSPOT: ("webhook_secret",),
    Platform.MAILCHIMP: ("webhook_secret", "webhook_token"),
    Platform.ACTIVECAMPAIGN: ("webhook_token",),
}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: str | int | float) -> float:
    """``"15m"`` → 900.0 seconds. Plain numbers are seconds."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f'{value!r} is not a duration: use a number with s, m, h or d (e.g. "15m")')
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


Duration = Annotated[float, Field(description="seconds; the file may say 30s, 15m, 1h or 1d")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Strict):
    url: str = "sqlite:///leadsync.db"
    # How long a write waits while another program holds the store locked, then fails (a store error).
    lock_timeout: Duration = 30.0

    @field_validator("lock_timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


class EngineConfig(_Strict):
    """What runs the scheduled syncs: ``embedded`` (APScheduler in ``leadsync daemon``, SQLite or
    PostgreSQL) or ``procrastinate`` (``leadsync worker`` processes sharing a PostgreSQL store)."""

    kind: Literal["embedded", "procrastinate"] = "embedded"
    # procrastinate: a re-score of more persons than this is split into person-range jobs of this
    # many persons each, which any worker takes (``sync.workers``)
    score_range: int = Field(default=20_000, ge=1)


ENGINE_KINDS = ("embedded", "procrastinate")


class ScheduleConfig(_Strict):
    interval: Duration = 900.0
    misfire_grace: Duration = 300.0

    @field_validator("interval", "misfire_grace", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


class WritebackConfig(_Strict):
    field_prefix: str = "leadsync_"
    lifecycle: StrictBool = True
    dry_run: StrictBool = False
    # The platform is the truth for leadsync's fields and tags: a value someone else changed there
    # since leadsync wrote it is written again ("rewrite") or only reported by push ("report").
    on_drift: Literal["rewrite", "report"] = "rewrite"

    @field_validator("field_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,19}", value):
            raise ValueError("use 1 to 20 lowercase letters, digits or underscores, starting with a letter")
        return value


class HistoryConfig(_Strict):
    """Run history (``leadsync runs``): finished runs older than ``keep_days`` are deleted at the
    start of pipeline runs; the audit of what was written is kept."""

    keep_days: int = Field(default=90, ge=1)


class AlertsConfig(_Strict):
    """``[alerts]``: who hears of a source that keeps failing or whose credentials are refused.

    ``failures``: runs in a row that make a source failing (``/healthz`` answers 503 and an alert
    goes out, once per streak). ``command`` runs with the alert as JSON on stdin; ``url`` or
    ``url_env`` (the environment variable holding a secret webhook URL, such as Slack's) gets the
    same JSON POSTed, a Slack-compatible ``{"text": ...}`` with more keys beside it.
    """

    failures: int = Field(default=3, ge=1, le=1000)
    command: str | list[str] | None = None
    url: str | None = None
    url_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeout: Duration = 10.0
    credentials: StrictBool = True  # alert when a failed run's source refuses its credentials
    recovered: StrictBool = True  # and say so when a source that was alerted on succeeds again

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in {"http", "https"}:
            raise ValueError(f"{value!r} is not an http or https URL")
        return value

    @field_validator("command")
    @classmethod
    def _command(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is not None and not (value if isinstance(value, list) else value.strip()):
            raise ValueError("an empty command; leave it out to send no alert by command")
        return value

    @model_validator(mode="after")
    def _one_url(self) -> AlertsConfig:
        if self.url is not None and self.url_env is not None:
            raise ValueError("give url or url_env, not both")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.command or self.url or self.url_env)


class ScoringConfig(_Strict):
    model: str = "default"  # a preset name (default, pardot, points) or a path to a model file


class _Throttled(_Strict):
    """Options every platform shares: how patient to be, and how far back to re-read."""

    lookback_s: float | None = Field(default=None, ge=0, description="overlap re-read before the cursor")
    max_attempts: int | None = Field(default=None, ge=1, le=20)
    max_elapsed_s: float | None = Field(
        default=None, gt=0, description="give up on a request after this long"
    )
    backoff_initial_s: float | None = Field(default=None, gt=0)
    backoff_max_s: float | None = Field(default=None, gt=0)
    timeout_s: float | None = Field(
        default=None, gt=0, le=600, description="wait this long for an answer (default 30)"
    )

    def disables_limits(self) -> bool:
        return False


class HubSpotOptions(_Throttled):
    # hubspot.md §5: the tier sets the burst limit (100 per 10 s on Free/Starter, 190 above).
    tier: Literal["free", "starter", "professional", "enterprise"] = "free"
    ten_secondly: int | None = Field(default=None, ge=1, description="override the tier's burst limit")
    rate_limit: StrictBool = Field(default=True, description="false: no client-side throttle (sandbox only)")
    rate_limited_wait_s: float | None = Field(
        default=None, gt=0, description="wait after a 429 without Retry-After"
    )
    push_workers: int = Field(
        default=2,
        ge=1,
        le=4,
        description="batch updates in flight at once (the rate limiter still paces them)",
    )
    portal_id: int | None = Field(
        default=None, ge=1, description="the account's Hub ID: the report links each contact to its record"
    )

    def disables_limits(self) -> bool:
        return not self.rate_limit


class MailchimpOptions(_Throttled):
    lists: list[str] = Field(default_factory=list, description="audience ids; empty = every audience")
    # mailchimp.md §9: 10 simultaneous connections per user.
    concurrency: int = Field(default=10, ge=1, le=10)
    # mailchimp.md §6: bulk tagging (static segments, 500 members a request) has no is_syncing, so
    # automations triggered by a tag fire; one member a request with is_syncing is the default.
    bulk_tags: StrictBool = Field(
        default=False,
        description="tag 500 members a request; tag automations then fire (one member a request does not)",
    )
    dc: str | None = Field(
        default=None,
        pattern=r"^[a-z]{2}[0-9]{1,3}$",
        description="data centre (us6) for the report's member links; default: from base_url",
    )


class ActiveCampaignOptions(_Throttled):
    # activecampaign.md §8: 5 requests per second per account; 0 = no client-side throttle (sandbox only).
    requests_per_second: float = Field(default=5.0, ge=0, le=5)
    tracking_sweep_hours: float | None = Field(
        default=None, gt=0, description="re-read every contact's tracking logs this often"
    )
    tracking_sweep_requests: int | None = Field(
        default=None,
        ge=1,
        description="requests a run's tracking-log sweep may make (default: half the interval's rate budget)",
    )
    profile_fields: dict[str, str] = Field(
        default_factory=dict, description="attribute -> custom field perstag"
    )
    activity_map: dict[str, str] = Field(
        default_factory=dict, description="activity reference_type -> event type"
    )
    tracking_map: dict[str, str] = Field(default_factory=dict, description="tracked event name -> event type")
    bulk_rate_wait_s: float | None = Field(default=None, gt=0)
    import_poll_s: float | None = Field(default=None, gt=0)
    import_timeout_s: float | None = Field(default=None, gt=0)
    account: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="account name ({account}.activehosted.com) for the report's contact links; default: from base_url",
    )

    @field_validator("activity_map", "tracking_map")
    @classmethod
    def _event_types(cls, value: dict[str, str]) -> dict[str, str]:
        known = {t.value for t in EventType}
        for name, event_type in value.items():
            if event_type not in known:
                raise ValueError(
                    f"{name!r} maps to unknown event type {event_type!r}; known: {', '.join(sorted(known))}"
                )
        return value

    def disables_limits(self) -> bool:
        return self.requests_per_second == 0


_OPTIONS: dict[Platform, type[_Strict]] = {
    Platform.HUBSPOT: HubSpotOptions,
    Platform.MAILCHIMP: MailchimpOptions,
    Platform.ACTIVECAMPAIGN: ActiveCampaignOptions,
}


def is_loopback(url: str | None) -> bool:
    if not url:
        return False
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SourceConfig(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    platform: Platform
    base_url: str | None = None
    secrets: dict[str, str] = Field(default_factory=dict, description="secret name -> environment variable")
    inline_secrets: dict[str, str] = Field(default_factory=dict, repr=False)
    options: dict[str, Any] = Field(default_factory=dict)
    interval: Duration | None = None
    enabled: StrictBool = True
    streams: list[str] | None = Field(
        default=None, description="the streams to pull (`leadsync streams` lists them); default: all"
    )

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://api.hubapi.com")
        return value.rstrip("/")

    @field_validator("secrets")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for secret, variable in value.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable):
                raise ValueError(
                    f"secrets.{secret} must name an environment variable (like HUBSPOT_TOKEN), "
                    "not hold the secret itself"
                )
        return value

    @model_validator(mode="after")
    def _check(self) -> SourceConfig:
        if self.streams is not None:
            choices = ", ".join(stream_names(self.platform))
            unknown = unknown_streams(self.platform, self.streams)
            if unknown:
                raise ValueError(
                    f"streams: unknown stream {unknown[0]!r} for {self.platform.value}; choices: {choices}"
                )
            if not self.streams:
                raise ValueError(
                    f"streams: select at least one stream ({choices}), or leave streams out for all; "
                    "use enabled = false to turn the source off"
                )
        if self.inline_secrets and not is_loopback(self.base_url):
            raise ValueError(
                "inline_secrets are only accepted for a sandbox on loopback; put the secret in an "
                "environment variable and name it under [sources.secrets]"
            )
        try:
            options = _OPTIONS[self.platform].model_validate(self.options)
        except ValidationError as exc:
            raise ValueError(_first_error(exc, prefix="options")) from None
        if options.disables_limits() and not is_loopback(self.base_url):  # type: ignore[attr-defined]
            raise ValueError(
                "options: turning off the client-side rate limit is only accepted for a sandbox on loopback; "
                "the platform would answer 429s and may suspend the key"
            )
        known = {name for group in REQUIRED_SECRETS[self.platform] for name in group}
        known |= set(WEBHOOK_SECRETS[self.platform])
        unknown = (set(self.secrets) | set(self.inline_secrets)) - known
        if unknown:
            raise ValueError(
                f"unknown secret {sorted(unknown)} for {self.platform.value}; known: {sorted(known)}"
            )
        return self

    def typed_options(self) -> BaseModel:
        return _OPTIONS[self.platform].model_validate(self.options)


class WebhooksConfig(_Strict):
    """The webhook receiver (``leadsync webhooks serve``, ``daemon --webhook-port``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8780, ge=0, le=65535)
    # the address the platforms reach the receiver at (``webhooks setup``), e.g. https://hooks.example.com
    public_url: str | None = None
    # deliveries queued and not yet processed, at most; past it the receiver answers 429
    queue_limit: int = Field(default=5000, ge=1)
    workers: int = Field(default=2, ge=1, le=16)  # fast-path threads
    tolerance: Duration = 300.0  # signed deliveries older (or newer) than this are refused

    @field_validator("tolerance", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


class LeadsyncConfig(_Strict):
    store: StoreConfig = Field(default_factory=StoreConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    writeback: WritebackConfig = Field(default_factory=WritebackConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)
    sources: list[SourceConfig] = Field(default_factory=list)
    path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _unique_names(self) -> LeadsyncConfig:
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"two sources are named {source.name!r}; names must be unique")
            seen.add(source.name)
        return self

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise ConfigError(
            f"no source named {name!r}; configured: {[s.name for s in self.sources]}", file=str(self.path)
        )


class EnvSettings(BaseSettings):
    """Settings read from the environment (``LEADSYNC_*``), which override the file."""

    model_config = SettingsConfigDict(env_prefix="LEADSYNC_", extra="ignore")

    config: Path | None = None
    store_url: str | None = None


def config_path(explicit: Path | None, env: EnvSettings | None = None) -> Path:
    """``--config``, else ``LEADSYNC_CONFIG``, else ./leadsync.toml."""
    if explicit is not None:
        return explicit
    env = env or EnvSettings()
    return env.config or DEFAULT_CONFIG_PATH


def _key_of(loc: tuple[Any, ...]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += ("." if key else "") + str(part)
    return key


def _first_error(exc: ValidationError, *, prefix: str = "") -> str:
    err = exc.errors()[0]
    key = _key_of(tuple(err["loc"]))
    key = f"{prefix}.{key}" if prefix and key else prefix or key
    return f"{key}: {_message(err)}"


def _message(err: Mapping[str, Any]) -> str:
    message = str(err["msg"])
    message = message.removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return "unknown key (check its spelling against `leadsync init`)"
    if err["type"] == "bool_type":
        return f"must be true or false (a TOML boolean, without quotes), not {err.get('input')!r}"
    if err["type"] == "literal_error" and tuple(err["loc"]) == ("engine", "kind"):
        return f"unknown engine {err.get('input')!r}; use one of {', '.join(ENGINE_KINDS)}"
    if err["type"] == "enum" and err["loc"] and err["loc"][-1] == "platform":
        return f"unknown platform {err.get('input')!r}; use one of hubspot, mailchimp, activecampaign"
    return message


def load_config(path: Path, *, env: EnvSettings | None = None) -> LeadsyncConfig:
    """Read and validate ``path``. Raises ConfigError(file, key) on any problem."""
    file = str(path)
    if not path.exists():
        raise ConfigError(f"no config file here; create one with `leadsync init {path}`", file=file)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc.__class__.__name__}", file=file) from None
    try:
        config = LeadsyncConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _key_of(tuple(err["loc"]))
        # A model validator's message may carry its own inner key ("options.tier: ...").
        message = _message(err)
        inner, sep, rest = message.partition(": ")
        if sep and re.fullmatch(r"[\w.\[\]]+", inner):
            key, message = f"{key}.{inner}" if key else inner, rest
        raise ConfigError(message, file=file, key=key or None) from None
    env = env or EnvSettings()
    if env.store_url:
        config = config.model_copy(update={"store": StoreConfig(url=env.store_url)})
    check_engine(config, file=file)
    return config.model_copy(update={"path": path})


def check_engine(config: LeadsyncConfig, *, file: str | None = None) -> None:
    """``engine.kind = "procrastinate"`` needs a PostgreSQL store (its queue tables live there);
    checked after ``LEADSYNC_STORE_URL`` is applied, since that replaces ``store.url``."""
    if config.engine.kind != "procrastinate":
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        backend = make_url(config.store.url).get_backend_name()
    except ArgumentError:
        backend = "?"
    if backend != "postgresql":
        raise ConfigError(
            f'"procrastinate" needs a PostgreSQL store (store.url = "postgresql://..."), not {backend!r}; '
            'use kind = "embedded" with SQLite',
            file=file,
            key="engine.kind",
        )


def missing_secrets(config: LeadsyncConfig, source: SourceConfig, environ: Mapping[str, str]) -> list[str]:
    """Human-readable problems with a source's secrets, empty when it can run."""
    available = set(source.inline_secrets)
    problems: list[str] = []
    for secret, variable in source.secrets.items():
        if environ.get(variable):
            available.add(secret)
        else:
            problems.append(f"environment variable {variable} (secrets.{secret}) is not set")
    options = REQUIRED_SECRETS[source.platform]
    if any(set(group) <= available for group in options):
        return []
    if not problems:
        wanted = " or ".join("+".join(group) for group in options)
        problems.append(
            f"no secrets configured; {source.platform.value} needs {wanted} under [sources.secrets]"
        )
    return problems


def resolve_source(
    config: LeadsyncConfig, source: SourceConfig, environ: Mapping[str, str] | None = None
) -> SourceSettings:
    """Build the connector's settings with secrets read from the environment (or inline on loopback)."""
    environ = os.environ if environ is None else environ
    problems = missing_secrets(config, source, environ)
    if problems:
        raise ConfigError(
            "; ".join(problems), file=str(config.path), key=f"sources[{config.sources.index(source)}].secrets"
        )
    values = dict(source.inline_secrets)
    names = {name: "inline (sandbox)" for name in source.inline_secrets}
    for secret, variable in source.secrets.items():
        if environ.get(variable):
            values[secret] = environ[variable]
            names[secret] = variable
    options = source.typed_options().model_dump(exclude_none=True)
    timeout = {"timeout_s": float(options.pop("timeout_s"))} if "timeout_s" in options else {}
    return SourceSettings(
        name=source.name,
        platform=source.platform,
        base_url=source.base_url,
        secrets=values,
        secret_names=names,
        options=options,
        field_prefix=config.writeback.field_prefix,
        lifecycle_writeback=config.writeback.lifecycle,
        streams=tuple(source.streams) if source.streams is not None else None,
        interval_s=float(source.interval or config.schedule.interval),
        **timeout,
    )
