"""Webhook signatures: HubSpot v3 exactly as the fact sheet's worked example (hubspot.md §6) and the
SDK's ``Signature.is_valid``; Mailchimp's HMAC signing (mailchimp.md §10)."""

from __future__ import annotations

import hashlib
import random
import string
import time

import pytest
from hubspot.exceptions import InvalidSignatureTimestampError
from hubspot.utils.signature import Signature

from leadsync.sync.webhooks.signatures import (
    BadSignature,
    hubspot_v3,
    mailchimp_header,
    verify_hubspot_v3,
    verify_mailchimp,
)

# hubspot.md §6: HubSpot's documented sample, its secret, and the v3 worked example.
SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
BODY = (
    '[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    '"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
    '"changeFlag":"NEW","appId":54321}]'
)
URI = "https://example.com/webhook"
TIMESTAMP = "1564113600000"
V3 = "vYt5enFv25HJRG6tsXKFuOtDlX0chl9mxouF1re6TVA="
V1 = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
EXAMPLE_NOW = 1564113600.0 + 10  # ten seconds after the example was signed


def test_the_doc_sample_is_the_one_the_fact_sheet_hashed() -> None:
    assert hashlib.sha256((SECRET + BODY).encode()).hexdigest() == V1


def test_hubspot_v3_reproduces_the_worked_example() -> None:
    assert hubspot_v3(SECRET, "POST", URI, BODY, TIMESTAMP) == V3
    verify_hubspot_v3(
        secret=SECRET, method="POST", uri=URI, body=BODY, signature=V3, timestamp=TIMESTAMP, now_s=EXAMPLE_NOW
    )


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("secret", "zzzzzzzz-yyyy-yyyy-yyyy-yyyyyyyyyyyy", "does not match"),
        ("body", BODY.replace('"objectId":123', '"objectId":124'), "does not match"),
        ("uri", "https://example.com/other", "does not match"),
        ("signature", "B" + V3[1:], "does not match"),
        ("signature", None, "no X-HubSpot-Signature-v3"),
        ("timestamp", None, "no readable"),
    ],
)
def test_hubspot_v3_refuses_any_changed_part(field: str, value: str | None, reason: str) -> None:
    args = {
        "secret": SECRET,
        "method": "POST",
        "uri": URI,
        "body": BODY,
        "signature": V3,
        "timestamp": TIMESTAMP,
    }
    args[field] = value
    with pytest.raises(BadSignature, match=reason):
        verify_hubspot_v3(**args, now_s=EXAMPLE_NOW)  # type: ignore[arg-type]


def test_hubspot_v3_refuses_a_timestamp_older_than_five_minutes_as_the_sdk_does() -> None:
    with pytest.raises(BadSignature, match="stale"):
        verify_hubspot_v3(
            secret=SECRET,
            method="POST",
            uri=URI,
            body=BODY,
            signature=V3,
            timestamp=TIMESTAMP,
            now_s=1564113600.0 + 301,
        )
    with pytest.raises(InvalidSignatureTimestampError):  # the SDK, on the same (old) example
        Signature.is_valid(V3, SECRET, BODY, URI, "POST", signature_version="v3", timestamp=TIMESTAMP)


def test_hubspot_v3_agrees_with_the_sdk_on_fresh_requests() -> None:
    rng = random.Random(22)
    for _ in range(50):
        secret = "".join(rng.choices(string.ascii_letters + string.digits + "-", k=36))
        event_id, object_id = rng.randrange(10**9), rng.randrange(10**6)
        body = (
            f'[{{"eventId":{event_id},"objectId":{object_id},"subscriptionType":"contact.propertyChange"}}]'
        )
        uri = f"https://hooks.example.com/webhooks/hubspot?x={rng.randrange(100)}"
        now = time.time()
        stamp = str(int(now * 1000) - rng.randrange(0, 200_000))
        ours = hubspot_v3(secret, "POST", uri, body, stamp)
        assert Signature.is_valid(ours, secret, body, uri, "POST", signature_version="v3", timestamp=stamp)
        verify_hubspot_v3(
            secret=secret, method="POST", uri=uri, body=body, signature=ours, timestamp=stamp, now_s=now
        )
        wrong = hubspot_v3(secret + "x", "POST", uri, body, stamp)
        assert not Signature.is_valid(
            wrong, secret, body, uri, "POST", signature_version="v3", timestamp=stamp
        )
        with pytest.raises(BadSignature):
            verify_hubspot_v3(
                secret=secret, method="POST", uri=uri, body=body, signature=wrong, timestamp=stamp, now_s=now
            )


MC_SECRET = "mc-signing-secret"
MC_BODY = (
    b"type=unsubscribe&fired_at=2026-12-04+06%3A00%3A00&data%5Bemail%5D=ana%40acme.io&data%5Blist_id%5D=a1"
)


def test_mailchimp_signature_is_hmac_of_t_dot_body() -> None:
    header = mailchimp_header(MC_SECRET, 1_800_000_000, MC_BODY)
    import hmac

    expected = hmac.new(MC_SECRET.encode(), b"1800000000." + MC_BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1800000000,v1={expected}"
    verify_mailchimp(secret=MC_SECRET, header=header, body=MC_BODY, now_s=1_800_000_100)


@pytest.mark.parametrize(
    ("secret", "body", "now", "reason"),
    [
        ("another-secret", MC_BODY, 1_800_000_000, "does not match"),
        (MC_SECRET, MC_BODY + b"&x=1", 1_800_000_000, "does not match"),
        (MC_SECRET, MC_BODY, 1_800_000_301, "stale"),
    ],
)
def test_mailchimp_signature_refuses_wrong_secret_altered_body_and_stale_time(
    secret: str, body: bytes, now: float, reason: str
) -> None:
    header = mailchimp_header(secret, 1_800_000_000, MC_BODY)
    with pytest.raises(BadSignature, match=reason):
        verify_mailchimp(secret=MC_SECRET, header=header, body=body, now_s=now)


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=abc,v1=def", "t=1800000000"])
def test_mailchimp_signature_refuses_a_missing_or_unreadable_header(header: str | None) -> None:
    with pytest.raises(BadSignature):
        verify_mailchimp(secret=MC_SECRET, header=header, body=MC_BODY, now_s=1_800_000_000)
