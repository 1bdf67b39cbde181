"""The root ``leadsync`` command: global options, the shared consoles, and how every command turns
leadsync's errors into one line and an exit code. Each command group lives in its own module here."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from leadsync.config.settings import EnvSettings, LeadsyncConfig, config_path, load_config
from leadsync.connectors.errors import ConfigError, LeadsyncError
from leadsync.sync.logsetup import REDACTOR, configure_logging, register_secrets

app = typer.Typer(
    name="leadsync",
    help="Pull contacts and engagement from HubSpot, Mailchimp and ActiveCampaign, score every person, "
    "and write the scores back where sales people see them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

out = Console()

err = Console(stderr=True, soft_wrap=True)  # one error, one line: scripts grep it

EXIT_CONFIG = 2

EXIT_FAILED = 1


@dataclass
class Context:
    config_option: Path | None
    env: EnvSettings

    @property
    def config_file(self) -> Path:
        return config_path(self.config_option, self.env)

    def load(self) -> LeadsyncConfig:
        config = load_config(self.config_file, env=self.env)
        register_secrets(config)
        return config


@app.callback()
def _global(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Config file (default: $LEADSYNC_CONFIG, else ./leadsync.toml)."),
    ] = None,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Log JSON lines instead of readable text.")
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")] = "WARNING",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Same as --log-level INFO.")] = False,
) -> None:
    configure_logging(level="INFO" if verbose and log_level == "WARNING" else log_level, json_lines=log_json)
    ctx.obj = Context(config_option=config, env=EnvSettings())


def print_error(exc: LeadsyncError) -> int:
    """One line on stderr for one of leadsync's errors; returns the exit code it means.

    The message is text, never console markup: a config key such as ``[sources.secrets]`` in it
    is printed as it is (every string that comes from a user, a config or a platform is escaped).
    """
    label = getattr(exc, "label", "config error" if isinstance(exc, ConfigError) else "error")
    err.print(f"[red]{label}:[/red] {escape(REDACTOR.text(str(exc)))}", highlight=False)
    return getattr(exc, "exit_code", EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_FAILED)


@contextmanager
def errors() -> Iterator[None]:
    """Turn leadsync's own errors into one line on stderr and an exit code."""
    try:
        yield
    except LeadsyncError as exc:
        raise typer.Exit(print_error(exc)) from None


def print_json(data: Any) -> None:
    sys.stdout.write(REDACTOR.text(json.dumps(data, indent=2, default=str)) + "\n")


SourcesArg = Annotated[
    list[str] | None, typer.Argument(help="Sources to work on (default: every enabled source).")
]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]

WideOpt = Annotated[
    bool,
    typer.Option(
        "--wide", help="Show every column, each value on one line (tables fit the terminal otherwise)."
    ),
]

ModelOpt = Annotated[
    str | None, typer.Option("--model", help="Scoring model: a preset (default, pardot, points) or a file.")
]


def engine_for(config: LeadsyncConfig) -> Any:
    from leadsync.sync.store import make_engine

    return make_engine(config.store.url, lock_timeout=config.store.lock_timeout)


def model_for(config: LeadsyncConfig, option: str | None) -> Any:
    """The scoring model of ``--model`` or else of the config's ``scoring.model``.

    A model that does not load (a misspelt preset, a missing or broken file) is a ConfigError that
    says where it was named: the config file and ``scoring.model``, or ``--model``, followed by the
    model file's own problem (its key and reason).
    """
    from leadsync.config.scoring_model import load_model

    ref = option or config.scoring.model
    if config.path is not None and option is None and ref.endswith(".toml") and not Path(ref).is_absolute():
        ref = str(config.path.parent / ref)  # a model path in the config is relative to the config
    try:
        return load_model(ref)
    except ConfigError as exc:
        if option is not None:
            raise ConfigError(str(exc), key="--model") from None
        file = None if config.path is None else str(config.path)
        raise ConfigError(str(exc), file=file, key="scoring.model") from None


def when(moment: Any) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")
