"""Webhook signatures, pure functions: HubSpot v3 and Mailchimp's HMAC signing.

HubSpot (hubspot.md §6): ``X-HubSpot-Signature-v3`` is base64(HMAC-SHA256(client secret, method +
URI + body + timestamp)), ``X-HubSpot-Request-Timestamp`` epoch milliseconds, refused when older
than 300 s. The SDK's ``hubspot.utils.signature.Signature`` is the reference: the signature is
computed by it (``get_signature``), and only the time check is ours, so that ``now`` can be passed.

Mailchimp (mailchimp.md §10, the 2026 docs): ``X-Mailchimp-Signature: t=<unix>,v1=<hex>`` where v1
is HMAC-SHA256(signing secret, "{t}.{raw body}"), refused when |now - t| > 300 s.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import unquote

from hubspot.utils.signature import Signature

__all__ = [
    "BadSignature",
    "hubspot_v3",
    "mailchimp_header",
    "mailchimp_v1",
    "signature_digest",
    "verify_hubspot_v3",
    "verify_mailchimp",
]

TOLERANCE_S = 300.0  # both platforms: hubspot.md §6 (SDK MAX_ALLOWED_TIMESTAMP), mailchimp.md §10


@dataclass(frozen=True)
class BadSignature(Exception):
    """Why a delivery's signature was refused (said in the log and the 401, never the secret)."""

    reason: str

    def __str__(self) -> str:
        return self.reason


def hubspot_v3(secret: str, method: str, uri: str, body: str, timestamp: str) -> str:
    return Signature.get_signature(secret, body, "v3", uri, method, timestamp)


def verify_hubspot_v3(
    *,
    secret: str,
    method: str,
    uri: str,
    body: str,
    signature: str | None,
    timestamp: str | None,
    now_s: float,
    tolerance_s: float = TOLERANCE_S,
) -> None:
    """Raise ``BadSignature`` unless ``signature`` is HubSpot's v3 signature of this request, made
    within ``tolerance_s`` of ``now_s``. The docs say to URL-decode some characters of the URI and
    do not say which (hubspot.md §6, unconfirmed): the URI as received and fully decoded both pass."""
    if not signature:
        raise BadSignature("no X-HubSpot-Signature-v3 header")
    try:
        sent_ms = float(timestamp) if timestamp is not None else None
    except ValueError:
        sent_ms = None
    if sent_ms is None:
        raise BadSignature("no readable X-HubSpot-Request-Timestamp header")
    age = now_s - sent_ms / 1000.0
    if age >= tolerance_s:  # the SDK's rule: older than 5 minutes
        raise BadSignature(f"stale timestamp ({age:.0f} s old, the limit is {tolerance_s:.0f} s)")
    if -age >= tolerance_s:  # stricter than the SDK: a time far in the future is no fresher
        raise BadSignature(f"timestamp {-age:.0f} s in the future")
    for candidate in dict.fromkeys((uri, unquote(uri))):
        if hmac.compare_digest(hubspot_v3(secret, method, candidate, body, str(timestamp)), signature):
            return
    raise BadSignature("signature does not match (wrong secret, or the body or URL was altered)")


def mailchimp_v1(secret: str, t: str, body: bytes) -> str:
    return hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()


def mailchimp_header(secret: str, t: int, body: bytes) -> str:
    """The ``X-Mailchimp-Signature`` value Mailchimp sends (the sandbox signs with it)."""
    return f"t={t},v1={mailchimp_v1(secret, str(t), body)}"


def verify_mailchimp(
    *, secret: str, header: str | None, body: bytes, now_s: float, tolerance_s: float = TOLERANCE_S
) -> None:
    if not header:
        raise BadSignature("no X-Mailchimp-Signature header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    t = (parts.get("t") or [None])[0]
    if t is None or not t.isdigit() or not parts.get("v1"):
        raise BadSignature("X-Mailchimp-Signature is not t=<unix>,v1=<hex>")
    if abs(now_s - int(t)) > tolerance_s:
        raise BadSignature(f"stale timestamp ({now_s - int(t):.0f} s off, the limit is {tolerance_s:.0f} s)")
    expected = mailchimp_v1(secret, t, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in parts["v1"]):
        raise BadSignature("signature does not match (wrong secret, or the body was altered)")


def signature_digest(signature: str) -> str:
    """What the store keeps of a signature to tell a replay: a digest, not the signature itself."""
    return hashlib.blake2b(signature.encode(), digest_size=16).hexdigest()
