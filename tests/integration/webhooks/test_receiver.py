"""The webhook receiver over loopback HTTP: signed and token-checked deliveries are queued in the
store once; a wrong secret, a stale timestamp, an altered body, a replay or a malformed body gets
401/400 and stores nothing, and the log line never holds the secret; past the bound, 429."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select

from leadsync.config.scoring_model import load_model
from leadsync.config.settings import LeadsyncConfig, SourceConfig, StoreConfig, WebhooksConfig
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import WebhookDelivery
from leadsync.sync.webhooks.service import WebhookService
from leadsync.sync.webhooks.signatures import hubspot_v3, mailchimp_header

HS_SECRET = "hs-client-secret-0123456789"
MC_SECRET = "mc-signing-secret-abcdef"
AC_TOKEN = "ac-path-token-f00dfeed"
MC_TOKEN = "mc-path-token-b00b"


def _config(tmp_path: Path, *, limit: int = 100) -> LeadsyncConfig:
    base = "http://127.0.0.1:9"
    return LeadsyncConfig(
        store=StoreConfig(url=f"sqlite:///{tmp_path / 'store.db'}"),
        webhooks=WebhooksConfig(port=0, queue_limit=limit),
        sources=[
            SourceConfig(
                name="hubspot",
                platform="hubspot",
                base_url=base,
                inline_secrets={"token": "t", "webhook_secret": HS_SECRET},
            ),
            SourceConfig(
                name="mailchimp",
                platform="mailchimp",
                base_url=base,
                inline_secrets={"api_key": "k-us1", "webhook_secret": MC_SECRET},
            ),
            SourceConfig(
                name="mc-unsigned",
                platform="mailchimp",
                base_url=base,
                inline_secrets={"api_key": "k-us1", "webhook_token": MC_TOKEN},
            ),
            SourceConfig(
                name="activecampaign",
                platform="activecampaign",
                base_url=base,
                inline_secrets={"api_token": "a", "webhook_token": AC_TOKEN},
            ),
        ],
    )


class Running:
    def __init__(self, service: WebhookService) -> None:
        self.service = service
        self.client = httpx.Client(base_url=service.url, timeout=10)
        self.engine = service.receiver.engine

    def rows(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(WebhookDelivery)).scalar_one()

    def hubspot(
        self,
        body: bytes,
        *,
        secret: str = HS_SECRET,
        age_s: float = 0,
        sign_body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        stamp = str(int((time.time() - age_s) * 1000))
        url = f"{self.service.url}/webhooks/hubspot"
        signature = hubspot_v3(secret, "POST", url, (sign_body or body).decode(), stamp)
        sent = {
            "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": stamp,
            "Content-Type": "application/json",
            **(headers or {}),
        }
        return self.client.post("/webhooks/hubspot", content=body, headers=sent)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    config = _config(tmp_path)
    engine = make_engine(config.store.url)
    with WebhookService(engine, config, load_model("default"), port=0, process=False) as service:
        yield Running(service)


def _hs_event(event_id: int, object_id: int = 101) -> dict[str, object]:
    return {
        "eventId": event_id,
        "subscriptionType": "contact.propertyChange",
        "objectId": object_id,
        "propertyName": "hs_analytics_num_page_views",
        "propertyValue": "3",
        "occurredAt": 1,
    }


def test_signed_hubspot_delivery_is_queued_once(running: Running) -> None:
    body = json.dumps([_hs_event(1), _hs_event(2, 102)]).encode()
    answer = running.hubspot(body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"queued": 2}
    # HubSpot's retry of the same events: a new timestamp and signature, the same event ids
    again = running.hubspot(body)
    assert again.status_code == 200 and again.json() == {"queued": 0}
    assert running.rows() == 2


def test_bad_hubspot_deliveries_get_401_and_store_nothing(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps([_hs_event(7)]).encode()
    with caplog.at_level(logging.WARNING, logger="leadsync.webhooks"):
        assert running.hubspot(body, secret="wrong-secret").status_code == 401
        assert running.hubspot(body, age_s=301).status_code == 401
        altered = json.dumps([_hs_event(7, 999)]).encode()
        assert running.hubspot(altered, sign_body=body).status_code == 401
        assert running.client.post("/webhooks/hubspot", content=body).status_code == 401  # unsigned
    assert running.rows() == 0
    assert "stale timestamp" in caplog.text and "does not match" in caplog.text
    assert HS_SECRET not in caplog.text


def test_replayed_hubspot_delivery_gets_401(running: Running) -> None:
    body = json.dumps([_hs_event(8)]).encode()
    stamp = str(int(time.time() * 1000))
    url = f"{running.service.url}/webhooks/hubspot"
    headers = {
        "X-HubSpot-Signature-v3": hubspot_v3(HS_SECRET, "POST", url, body.decode(), stamp),
        "X-HubSpot-Request-Timestamp": stamp,
    }
    assert running.client.post("/webhooks/hubspot", content=body, headers=headers).status_code == 200
    replay = running.client.post("/webhooks/hubspot", content=body, headers=headers)
    assert replay.status_code == 401 and "replayed" in replay.text
    assert running.rows() == 1


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'[{"eventId":1}]', b'{"a":1}'])
def test_malformed_hubspot_body_gets_400_and_stores_nothing(running: Running, body: bytes) -> None:
    answer = running.hubspot(body)
    assert answer.status_code == 400, answer.text
    assert running.rows() == 0


def _mc_body(kind: str = "unsubscribe", email: str = "ana@acme.io") -> bytes:
    return urlencode(
        {
            "type": kind,
            "fired_at": "2026-12-04 06:00:00",
            "data[id]": "x1",
            "data[list_id]": "L1",
            "data[email]": email,
        }
    ).encode()


def test_mailchimp_signed_delivery_and_its_refusals(running: Running) -> None:
    body = _mc_body()
    now = int(time.time())
    ok = running.client.post(
        "/webhooks/mailchimp",
        content=body,
        headers={
            "X-Mailchimp-Signature": mailchimp_header(MC_SECRET, now, body),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert ok.status_code == 200 and ok.json() == {"queued": 1}
    for header, sent in [
        (mailchimp_header("wrong", now, body), body),  # wrong secret
        (mailchimp_header(MC_SECRET, now - 301, body), body),  # stale
        (mailchimp_header(MC_SECRET, now, body), body + b"&x=1"),  # altered body
        (mailchimp_header(MC_SECRET, now, body), body),  # replay of the accepted one
    ]:
        answer = running.client.post(
            "/webhooks/mailchimp", content=sent, headers={"X-Mailchimp-Signature": header}
        )
        assert answer.status_code == 401, answer.text
    assert running.rows() == 1


def test_mailchimp_get_validation_and_path_token(running: Running) -> None:
    assert running.client.get("/webhooks/mailchimp").status_code == 200
    assert running.client.get(f"/webhooks/mc-unsigned/{MC_TOKEN}").status_code == 200
    assert running.client.get("/webhooks/mc-unsigned/wrong").status_code == 401
    assert running.client.post(f"/webhooks/mc-unsigned/{MC_TOKEN}", content=_mc_body()).json() == {
        "queued": 1
    }
    assert running.client.post("/webhooks/mc-unsigned/nope", content=_mc_body("profile")).status_code == 401
    assert (
        running.client.post(f"/webhooks/mc-unsigned/{MC_TOKEN}", content=b"type=profile").status_code == 400
    )
    assert running.rows() == 1


def test_activecampaign_token_and_payloads(running: Running, caplog: pytest.LogCaptureFixture) -> None:
    body = urlencode(
        {
            "type": "click",
            "date_time": "2026-12-04T00:00:00-06:00",
            "contact[id]": "5",
            "contact[email]": "bo@corp.example",
            "link[url]": "https://example.com/pricing",
        }
    ).encode()
    assert running.client.post(f"/webhooks/activecampaign/{AC_TOKEN}", content=body).json() == {"queued": 1}
    with caplog.at_level(logging.INFO, logger="leadsync.webhooks"):
        assert running.client.post(f"/webhooks/activecampaign/{AC_TOKEN}", content=body).json() == {
            "queued": 0
        }
        assert running.client.post("/webhooks/activecampaign/guess", content=body).status_code == 401
        assert running.client.post("/webhooks/activecampaign", content=body).status_code == 401
        ignored = running.client.post(
            f"/webhooks/activecampaign/{AC_TOKEN}", content=b"type=account_add&date_time=x"
        )
        assert ignored.status_code == 200 and ignored.json()["queued"] == 0
        assert (
            running.client.post(f"/webhooks/activecampaign/{AC_TOKEN}", content=b"\xff\x00").status_code
            == 400
        )
        assert running.client.post("/webhooks/nosuch/x", content=body).status_code == 404
    assert running.rows() == 1
    assert "'account_add' is not about a person" in caplog.text
    assert AC_TOKEN not in caplog.text
    with running.engine.connect() as connection:  # nothing of a secret in the store
        stored = repr(connection.execute(select(WebhookDelivery)).all())
    assert AC_TOKEN not in stored and HS_SECRET not in stored and MC_SECRET not in stored


def test_queue_bound_answers_429_and_keeps_what_it_accepted(tmp_path: Path) -> None:
    config = _config(tmp_path, limit=5)
    engine = make_engine(config.store.url)
    with WebhookService(engine, config, load_model("default"), port=0, process=False) as service:
        client = httpx.Client(base_url=service.url, timeout=10)
        answers = [
            client.post(
                f"/webhooks/activecampaign/{AC_TOKEN}",
                content=urlencode({"type": "open", "date_time": str(n), "contact[id]": str(n)}).encode(),
            )
            for n in range(8)
        ]
        assert [a.status_code for a in answers] == [200] * 5 + [429] * 3
        assert answers[-1].headers["Retry-After"]
        assert service.receiver.waiting == 5


def test_receiver_in_front_of_another_worker_takes_room_again_once_the_queue_drains(tmp_path: Path) -> None:
    config = _config(tmp_path, limit=3)
    engine = make_engine(config.store.url)
    with WebhookService(engine, config, load_model("default"), port=0, process=False) as service:
        client = httpx.Client(base_url=service.url, timeout=10)

        def post(n: int) -> int:
            body = urlencode({"type": "open", "date_time": str(n), "contact[id]": str(n)}).encode()
            return client.post(f"/webhooks/activecampaign/{AC_TOKEN}", content=body).status_code

        assert [post(n) for n in range(4)] == [200, 200, 200, 429]
        with engine.begin() as connection:  # another process works the queue
            connection.execute(WebhookDelivery.__table__.update().values(status="done"))  # type: ignore[attr-defined]
        time.sleep(0.6)
        assert [post(n) for n in range(10, 14)] == [200, 200, 200, 429]
