"""``[alerts]``: tell someone when a source keeps failing or its credentials are refused.

``AlertMonitor`` reads each source's failure streak from the run history (``sync.metrics.
source_health``), so it sees the failures of every process on the store. It checks after each of
the daemon's jobs (``wake``) and once a minute, and sends:

* ``failing`` when a source's streak reaches ``[alerts] failures`` runs in a row;
* ``credentials`` when a failed run's source refuses its credentials: after a new failed run the
  monitor asks the connector's own credential check (``Connector.check``), which raises
  ``AuthError`` when the platform refuses them (HubSpot 401, Mailchimp 401, ActiveCampaign 403);
* ``recovered`` when a source that was alerted on succeeds again (``[alerts] recovered``).

Each alert goes out once per streak (a streak is named by its first failed run); a delivery that
fails is logged and tried again at the next check. The streaks alerted on are kept in memory: a
restarted daemon alerts once more on a streak that is still going on.

What is sent never holds a secret: the text is built from the source's name, counts and the run's
error summary (which names environment variables, never values), and passes through the
process-wide redactor (``sync.logsetup``) besides. A command gets the alert as JSON on stdin and in
``LEADSYNC_ALERT_*`` variables; the environment variables holding the sources' secrets are removed
from its environment.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import socket
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Engine

from leadsync.config.settings import AlertsConfig, LeadsyncConfig, SourceConfig, resolve_source
from leadsync.connectors.errors import AuthError, ConfigError, LeadsyncError
from leadsync.connectors.registry import connector_class
from leadsync.sync.logsetup import REDACTOR
from leadsync.sync.metrics import SourceHealth, source_health

__all__ = ["Alert", "AlertMonitor", "Notifier", "probe_credentials"]

log = logging.getLogger("leadsync.alerts")

POLL_S = 60.0  # a check at least this often: runs recorded by other processes (workers, commands)


@dataclass(frozen=True)
class Alert:
    kind: str  # failing | credentials | recovered
    source: str
    text: str
    consecutive_failures: int = 0
    last_error: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def payload(self) -> dict[str, Any]:
        """Slack-compatible (``text``), with the details as more keys; redacted once more."""
        body = {
            "text": self.text,
            "kind": self.kind,
            "source": self.source,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "host": socket.gethostname(),
            "at": self.at.isoformat(timespec="seconds"),
        }
        return json.loads(REDACTOR.text(json.dumps(body)))


def probe_credentials(
    config: LeadsyncConfig, source: SourceConfig, environ: Mapping[str, str] | None = None
) -> str | None:
    """The platform's refusal of ``source``'s credentials (the ``AuthError`` message), or None when
    it accepts them or the check failed for another reason (which the run's error already says)."""
    try:
        settings = resolve_source(config, source, environ)
        with connector_class(source.platform)(settings) as connector:
            connector.check()
    except AuthError as exc:
        return REDACTOR.text(str(exc))
    except ConfigError as exc:  # a secret's variable is not set: refused before any request
        return REDACTOR.text(str(exc))
    except LeadsyncError as exc:
        log.info("credential check of %s did not answer: %s", source.name, REDACTOR.text(str(exc)))
    return None


class Notifier:
    """Delivers an alert by command and/or URL, as ``[alerts]`` says. Returns whether every
    configured channel took it."""

    def __init__(
        self,
        alerts: AlertsConfig,
        *,
        secret_variables: set[str],
        environ: Mapping[str, str],
        file: str | None = None,
    ) -> None:
        self.alerts = alerts
        self.secret_variables = secret_variables
        self.environ = dict(environ)
        self.url = alerts.url
        if alerts.url_env is not None:
            self.url = self.environ.get(alerts.url_env) or None
            if self.url is None:
                raise ConfigError(
                    f"the environment variable {alerts.url_env} is not set", file=file, key="alerts.url_env"
                )
            REDACTOR.add(self.url)  # a webhook URL is a credential: never logged
        elif self.url is not None:
            REDACTOR.add(self.url)

    def __call__(self, alert: Alert) -> bool:
        payload = alert.payload()
        delivered = True
        if self.alerts.command:
            delivered &= self._run(payload)
        if self.url:
            delivered &= self._post(payload)
        return delivered

    def _run(self, payload: dict[str, Any]) -> bool:
        command = self.alerts.command
        args = shlex.split(command) if isinstance(command, str) else list(command or [])
        env = {name: value for name, value in self.environ.items() if name not in self.secret_variables}
        env.update(
            {
                "LEADSYNC_ALERT_KIND": payload["kind"],
                "LEADSYNC_ALERT_SOURCE": payload["source"],
                "LEADSYNC_ALERT_TEXT": payload["text"],
            }
        )
        try:
            done = subprocess.run(
                args,
                input=json.dumps(payload),
                env=env,
                capture_output=True,
                text=True,
                timeout=self.alerts.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.error("alert command %s failed: %s; trying again at the next check", args[0], exc)
            return False
        if done.returncode != 0:
            log.error(
                "alert command %s exited %d: %s; trying again at the next check",
                args[0],
                done.returncode,
                REDACTOR.text(done.stderr.strip()[-300:]),
            )
            return False
        return True

    def _post(self, payload: dict[str, Any]) -> bool:
        # Slack reads "&", "<" and ">" in text as markup; they are escaped as its formatting guide
        # says (https://api.slack.com/reference/surfaces/formatting#escaping).
        text = payload["text"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        try:
            answer = httpx.post(str(self.url), json={**payload, "text": text}, timeout=self.alerts.timeout)
        except httpx.HTTPError as exc:
            log.error("alert POST failed: %s; trying again at the next check", REDACTOR.text(str(exc)))
            return False
        if answer.status_code >= 300:
            log.error("alert POST answered %d; trying again at the next check", answer.status_code)
            return False
        return True


class AlertMonitor:
    """Checks the sources' streaks and sends each alert once per streak (see the module doc).

    ``notify`` and ``probe`` are injectable; ``check()`` runs one check in the caller's thread,
    ``start()``/``close()`` run checks on a thread, after each ``wake()`` and every ``poll_s``.
    """

    def __init__(
        self,
        engine: Engine,
        config: LeadsyncConfig,
        *,
        notify: Callable[[Alert], bool] | None = None,
        probe: Callable[[SourceConfig], str | None] | None = None,
        environ: Mapping[str, str] | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self.engine = engine
        self.config = config
        self.alerts = config.alerts
        environ = dict(os.environ) if environ is None else dict(environ)
        secret_variables = {variable for source in config.sources for variable in source.secrets.values()}
        if notify is None:
            notify = Notifier(
                self.alerts,
                secret_variables=secret_variables,
                environ=environ,
                file=None if config.path is None else str(config.path),
            )
        self.notify = notify
        self.probe = probe or (lambda source: probe_credentials(config, source, environ))
        self.poll_s = poll_s
        self.sources = [source for source in config.sources if source.enabled]
        # per source: the streak alerted on (its first failed run) and which kinds went out
        self._sent: dict[str, tuple[int, set[str]]] = {}
        self._probed: dict[str, int] = {}  # per source: the last failed run whose credentials were probed
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- one check ---

    def check(self) -> list[Alert]:
        """Look at every source once; returns the alerts delivered."""
        with self._lock:
            health = source_health(self.engine, [source.name for source in self.sources])
            delivered: list[Alert] = []
            for source in self.sources:
                delivered.extend(self._check_source(source, health[source.name]))
            return delivered

    def _check_source(self, source: SourceConfig, health: SourceHealth) -> list[Alert]:
        delivered: list[Alert] = []
        if health.streak == 0:
            self._probed.pop(source.name, None)
            streak = self._sent.get(source.name)
            if streak is not None:
                if self.alerts.recovered:
                    alert = Alert(
                        "recovered",
                        source.name,
                        f"leadsync: source {source.name!r} is working again: its last run succeeded.",
                    )
                    if not self._deliver(alert):
                        return delivered
                    delivered.append(alert)
                del self._sent[source.name]
            return delivered
        started, kinds = self._sent.get(source.name, (health.streak_started, set()))
        if started != health.streak_started:  # a new streak (runs between were pruned or unseen)
            kinds = set()
        self._sent[source.name] = (health.streak_started or 0, kinds)
        if (
            self.alerts.credentials
            and "credentials" not in kinds
            and health.last_failed is not None
            and self._probed.get(source.name) != health.last_failed
        ):
            self._probed[source.name] = health.last_failed
            refusal = self.probe(source)
            if refusal is not None:
                alert = Alert(
                    "credentials",
                    source.name,
                    f"leadsync: source {source.name!r}: the platform refuses its credentials. {refusal}",
                    consecutive_failures=health.streak,
                    last_error=health.last_error,
                )
                if self._deliver(alert):
                    kinds.add("credentials")
                    delivered.append(alert)
                else:
                    self._probed.pop(source.name, None)  # probe and send again at the next check
        if health.streak >= self.alerts.failures and "failing" not in kinds:
            alert = Alert(
                "failing",
                source.name,
                f"leadsync: source {source.name!r} failed its last {health.streak} runs"
                + (f"; last error: {health.last_error}" if health.last_error else ""),
                consecutive_failures=health.streak,
                last_error=health.last_error,
            )
            if self._deliver(alert):
                kinds.add("failing")
                delivered.append(alert)
        if not kinds:
            self._sent.pop(source.name, None)  # nothing sent for this streak: no "recovered" either
        return delivered

    def _deliver(self, alert: Alert) -> bool:
        log.warning("alert (%s): %s", alert.kind, alert.text)
        try:
            return bool(self.notify(alert))
        except Exception:  # noqa: BLE001 - a broken channel must not stop the daemon; logged in full
            log.exception("alert delivery failed; trying again at the next check")
            return False

    # --- on a thread ---

    def wake(self, *_: Any) -> None:
        """Check soon (an APScheduler listener: called after each job)."""
        self._wake.set()

    def start(self) -> AlertMonitor:
        self._thread = threading.Thread(target=self._loop, name="alerts", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._closed.is_set():
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the store may be briefly unavailable; logged, checked again
                log.exception("alert check failed; checking again later")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def close(self) -> None:
        """Stop checking. Waits at most a second: a check in flight (a credential probe) must not
        hold up the daemon's exit; the thread is a daemon thread and ends with the process."""
        self._closed.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
