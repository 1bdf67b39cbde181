"""Identity: one person per normalised email, and a person's attributes merged across sources.

Pure functions: the store hands in rows, these decide. DESIGN.md "Identity": one person per
trimmed, lowercased email; each platform record is an identity (source, remote id) so an email
change follows the remote id; when sources disagree on an attribute the most recently updated
value wins unless the config sets a precedence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from leadsync.connectors.records import Profile, normalise_email

__all__ = ["ATTRIBUTE_FIELDS", "IdentityAttributes", "checked_email", "merge_profile"]

ATTRIBUTE_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "job_title",
    "seniority",
    "company",
    "industry",
    "company_size",
    "country",
    "lifecycle_stage",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# RFC 5322 dot-atom of plain ASCII: the local part nearly every address has, and one that
# email-validator accepts as it is (anything else, quoted or international, goes to it in full).
_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_MAX_LOCAL, _MAX_ADDRESS = 64, 254  # RFC 5321 §4.5.3.1, as email-validator checks them


@lru_cache(maxsize=65_536)
def _domain_ok(domain: str) -> bool:
    """Whether email-validator accepts ``domain`` (syntax only), once per domain: its domain check
    (IDNA, a Unicode test per character) was most of the time a pull spent on each contact."""
    try:
        validate_email(f"x@{domain}", check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return False
    return True


def checked_email(raw: str | None) -> tuple[str | None, str | None]:
    """(normalised email, None) or (None, reason it cannot identify a person)."""
    email = normalise_email(raw)
    if email is None:
        return None, "no email address"
    local, _, domain = email.rpartition("@")
    if (
        len(email) <= _MAX_ADDRESS
        and len(local) <= _MAX_LOCAL
        and _PLAIN_LOCAL.fullmatch(local)
        and _domain_ok(domain)
    ):
        return email, None
    try:
        # Syntax only: no DNS lookups from a sync worker.
        validate_email(email, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        return None, f"invalid email address: {exc}"
    return email, None


@dataclass(frozen=True, slots=True)
class IdentityAttributes:
    """One source's attributes for a person, with the time that source last changed them."""

    source: str
    platform: str
    updated_at: datetime | None
    values: Mapping[str, object]


def merge_profile(
    email: str, identities: Sequence[IdentityAttributes], *, precedence: Sequence[str] = ()
) -> Profile:
    """Merge attributes: a source listed in ``precedence`` beats any later one; among the rest,
    the most recently updated non-empty value wins (ties go to the source name, for stability)."""
    if len(identities) == 1:  # most persons: nothing to rank (a full re-score merges every one)
        (only,) = identities
        values = only.values
        kept = {name: value for name in ATTRIBUTE_FIELDS if (value := values.get(name)) not in (None, "")}
        return Profile(email=email, platforms=(only.platform,), **kept)  # type: ignore[arg-type]
    rank = {name: index for index, name in enumerate(precedence)}

    def order(identity: IdentityAttributes) -> tuple[int, datetime, str]:
        preferred = len(rank) - rank[identity.source] if identity.source in rank else 0
        return (preferred, _aware(identity.updated_at), identity.source)

    ranked = sorted(identities, key=order, reverse=True)
    merged: dict[str, object] = {}
    for name in ATTRIBUTE_FIELDS:
        for identity in ranked:
            value = identity.values.get(name)
            if value not in (None, ""):
                merged[name] = value
                break
    platforms = tuple(sorted({identity.platform for identity in identities}))
    return Profile(email=email, platforms=platforms, **merged)  # type: ignore[arg-type]


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return _EPOCH
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
