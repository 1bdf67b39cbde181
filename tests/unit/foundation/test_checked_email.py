"""``checked_email`` answers as email-validator does, with its fast path for plain addresses on a
domain already checked (issue 23: the per-character domain check was most of a contact's ingest)."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email

from leadsync.sync.identity import checked_email

ADDRESSES = [
    "a@b.co",
    "John.Doe@Example.com",
    "a+tag@gmail.com",
    "o'brien@example.com",
    "x@localhost",
    "a..b@example.com",
    ".a@example.com",
    "a.@example.com",
    "a@-x.com",
    "a@x_y.com",
    "a@x..com",
    "a@example",
    "a@123.123.123.123",
    "a@[1.2.3.4]",
    "a@example.invalid",
    "üser@example.com",
    "user@exämple.com",
    "a@xn--80ak6aa92e.com",
    '"quoted local"@example.com',
    "a" * 64 + "@example.com",
    "a" * 65 + "@example.com",
    "a@" + "b" * 63 + ".com",
    "a@" + "b" * 64 + ".com",
    "a@" + ".".join(["b" * 60] * 5) + ".com",
]


def _library(address: str) -> bool:
    try:
        validate_email(address.strip().lower(), check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return False
    return True


@pytest.mark.parametrize("address", ADDRESSES)
def test_given_an_address_when_checked_twice_then_it_is_accepted_exactly_when_email_validator_accepts_it(
    address: str,
) -> None:
    for _ in range(2):  # the second time its domain is cached
        email, reason = checked_email(address)
        assert (email is not None) == _library(address), (address, reason)
        if email is None:
            assert reason
