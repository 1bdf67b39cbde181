"""The receiver and the processor together: what ``webhooks serve`` and ``daemon --webhook-port`` run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine

from leadsync.config.scoring_model import ScoringModel
from leadsync.config.settings import LeadsyncConfig
from leadsync.sync.webhooks.fastpath import FastPath, Processor
from leadsync.sync.webhooks.receiver import Receiver, ReceiverServer

__all__ = ["WebhookService"]


class WebhookService:
    """``process=False`` only queues (a receiver in front of another process that works the queue)."""

    def __init__(
        self,
        engine: Engine,
        config: LeadsyncConfig,
        model: ScoringModel,
        *,
        host: str | None = None,
        port: int | None = None,
        process: bool = True,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        settings = config.webhooks
        self.receiver = Receiver(engine, config, environ=environ)
        self.fastpath = FastPath(engine, config, model, environ=environ)
        self.processor = Processor(
            engine, self.fastpath, workers=settings.workers, processed=self.receiver.processed
        )
        self.process = process
        if process:
            self.receiver.notify = self.processor.notify
        self.server = ReceiverServer(
            self.receiver, host=host or settings.host, port=settings.port if port is None else port
        )

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> WebhookService:
        self.server.start()  # first: a port already in use stops here, with nothing else started
        if self.process:
            self.processor.start()  # works what an earlier run left queued too
        return self

    def stop(self) -> None:
        self.server.stop()
        self.processor.close()
        self.fastpath.close()

    def __enter__(self) -> WebhookService:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
