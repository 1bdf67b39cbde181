"""Write scores back to ActiveCampaign: custom fields and tags (DESIGN.md "Write-back").

* Fields (§3): one custom field per logical field, titled and personalisation-tagged with the
  prefix (``leadsync_affinity`` / ``LEADSYNC_AFFINITY``), created on first use and related to **all
  lists** (``fieldRels`` with ``relid 0``: "a user can only see a custom field if the contact is
  part of a list that this custom field is related to").
* Values and added tags go through bulk import (§7): up to 250 contacts and under 400,000 bytes a
  request, tags created when missing. Every import of a push is queued first (paced by the 5/s
  limiter and the 100-a-minute import cap), then ``/import/info`` is polled, soon and then less
  often, until each batch completes; its ``success`` ids and ``failure`` emails become the
  per-contact report. Below 10 contacts (§7: "the suggested minimum … use contact/sync below
  that") each contact is written by its id with ``PUT /contacts/{id}`` (§2: field values, the
  contact updated in place) and ``POST /contactTags``. Not ``contact/sync``: it finds the contact
  by email, so a contact whose email changed since the last pull would get a new, stray contact.
* Tag removal: only tags named with leadsync's prefix are ever removed, via
  ``GET /contacts/{id}/contactTags`` and ``DELETE /contactTags/{contactTag id}`` (§4: the id is the
  contactTag's, not the tag's). Bulk import cannot remove tags.
* Only fields leadsync owns are written; values are only the ones the pipeline passes.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from leadsync.connectors import stopping
from leadsync.connectors.activecampaign.streams import CONTACT_TAGS, FIELDS, TAGS
from leadsync.connectors.base import WRITEBACK_FIELDS, PushFailure, PushReport, ScoreUpdate
from leadsync.connectors.errors import ConnectorError, FatalError, NotFound, RetriableError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from leadsync.connectors.base import SourceSettings
    from leadsync.connectors.ratelimit import Limiter
    from leadsync.connectors.retry import Reply, RetryPolicy


class AccountClient(Protocol):
    """What a push needs from the ActiveCampaign connector: its settings, requests through its
    retry policy and limiter, and its page loop. The connector passes itself; taking this protocol
    instead of the connector class keeps the import one way (connector -> writeback)."""

    settings: SourceSettings
    retry: RetryPolicy
    import_limiter: Limiter
    field_ids: dict[str, int] | None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        limiter: Limiter | None = None,
    ) -> Reply: ...

    def _pages(self, spec: Any, **kwargs: Any) -> Iterator[Any]: ...


__all__ = [
    "FIELD_TYPES",
    "MAX_IMPORT_BYTES",
    "MAX_IMPORT_CONTACTS",
    "MIN_IMPORT_CONTACTS",
    "Writer",
    "encode_value",
]

log = logging.getLogger("leadsync.connectors.activecampaign")

MAX_IMPORT_CONTACTS = 250  # §7
MAX_IMPORT_BYTES = 400_000  # §7: payload under 400,000 bytes
MIN_IMPORT_CONTACTS = 10  # §7: below this, one request a contact (here PUT /contacts/{id}, see above)
# /import/info polling (§7 gives no processing time): first ask soon, then back off.
POLL_FIRST_S = 0.2
POLL_BACKOFF = 1.5
POLL_MAX_S = 5.0

# Logical field -> ActiveCampaign field type (§3). The scores are "number" fields, so that sales
# can sort and filter contacts by them: §3 lists number among the POST /fields types, and the v3
# reference's create-field examples send {"type": "number", "defval": "1234"}; the schema's enum
# text omits it, so an account that refuses it gets a text field instead (``_create_field``).
FIELD_TYPES: dict[str, str] = {
    "affinity": "number",
    "engagement": "number",
    "stage": "text",
    "grade": "text",
    "lifecycle": "text",
    "reason": "textarea",
    "scored_at": "datetime",
}
assert set(FIELD_TYPES) == set(WRITEBACK_FIELDS)


def encode_value(logical: str, value: Any) -> str:
    """A value as ActiveCampaign stores it (§3: datetime as ISO with offset; the account converts
    it to its own timezone on save)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.isoformat(timespec="seconds")
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.2f}"
    return str(value)


class Writer:
    """One push (or ensure_fields) for one connector."""

    def __init__(self, connector: AccountClient) -> None:
        self.c = connector
        self.prefix = connector.settings.field_prefix
        self.options = connector.settings.options
        self.poll_interval_s = float(self.options.get("import_poll_s", POLL_FIRST_S))
        self.poll_timeout_s = float(self.options.get("import_timeout_s", 600.0))

    # --- fields ------------------------------------------------------------------------------

    def perstag(self, logical: str) -> str:
        return f"{self.prefix}{logical}".upper()

    def ensure_fields(self) -> dict[str, int]:
        """Logical field -> field id, creating missing fields and their all-lists relation."""
        existing: dict[str, dict[str, Any]] = {}
        related: set[str] = set()
        for page in self.c._pages(FIELDS):
            for custom in page.records:
                existing[str(custom.get("perstag") or "").upper()] = custom
            for rel in (page.body or {}).get("fieldRels") or []:
                if str(rel.get("relid")) == "0":
                    related.add(str(rel.get("field")))
        ids: dict[str, int] = {}
        for logical, kind in FIELD_TYPES.items():
            tag = self.perstag(logical)
            custom = existing.get(tag)
            if custom is None:
                custom = self._create_field(logical, kind, tag)
            elif str(custom.get("type") or kind) != kind:
                log.warning(
                    "%s: field %s is a %s field (made by an earlier leadsync); delete it in ActiveCampaign "
                    "and the next push makes it a %s field",
                    self.c.settings.name,
                    tag,
                    custom.get("type"),
                    kind,
                )
            field_id = int(custom["id"])
            if str(field_id) not in related:
                # §3: relid 0 = all lists, or sales people do not see the field on most contacts.
                self.c.request("POST", "fieldRels", json={"fieldRel": {"field": field_id, "relid": 0}})
            ids[logical] = field_id
        self.c.field_ids = dict(ids)
        return ids

    def _create_field(self, logical: str, kind: str, perstag: str) -> dict[str, Any]:
        body = {
            "field": {
                "type": kind,
                "title": f"{self.prefix}{logical}",
                "perstag": perstag,
                "descript": f"Written by leadsync ({logical}); do not edit by hand.",
                "visible": True,
            }
        }
        try:
            reply = self.c.request("POST", "fields", json=body)
        except FatalError as exc:
            if exc.status not in (400, 422):
                raise
            # §3: duplicate title → 422; someone (another run) created it meanwhile: read it back.
            for page in self.c._pages(FIELDS, params={"filters[perstag]": perstag}):
                for custom in page.records:
                    if str(custom.get("perstag") or "").upper() == perstag:
                        return custom
            if kind != "number":
                raise
            # FIELD_TYPES: an account that does not take the number type still gets the field.
            log.warning(
                "%s: a number field was refused (%s); %s is a text field", self.c.settings.name, exc, perstag
            )
            return self._create_field(logical, "text", perstag)
        created = (reply.body or {}).get("fields") or [(reply.body or {}).get("field")]
        return created[0]

    # --- push --------------------------------------------------------------------------------

    def push(self, updates: Sequence[ScoreUpdate]) -> PushReport:
        report = PushReport()
        if not updates:
            return report
        calls_before = self.c.retry.stats.calls
        # The pipeline provisions fields just before pushing (connector.ensure_fields): reuse them.
        field_ids = self.c.field_ids or self.ensure_fields()
        removals = [u for u in updates if self._own(u.tags_remove)]
        writes = [u for u in updates if u.fields or u.tags_add]
        if len(writes) >= MIN_IMPORT_CONTACTS:
            self._bulk(writes, field_ids, report)
        else:
            for update in writes:
                self._sync_one(update, field_ids, report)
        failed = {f.remote_id for f in report.failed}
        for update in removals:
            if update.remote_id not in failed:
                self._remove_tags(update, report)
        failed = {f.remote_id for f in report.failed}
        report.written = [u.remote_id for u in updates if u.remote_id not in failed]
        report.requests = self.c.retry.stats.calls - calls_before
        return report

    def _own(self, tags: Iterable[str]) -> list[str]:
        """Only tags leadsync created (named with its prefix) may ever be removed."""
        root = self.prefix.rstrip("_:- ").lower()
        return [t for t in tags if root and t.lower().startswith(root)]

    def _fields_of(self, update: ScoreUpdate, field_ids: Mapping[str, int]) -> list[tuple[int, str]]:
        return [
            (field_ids[name], encode_value(name, value))
            for name, value in update.fields.items()
            if name in field_ids  # never a field leadsync does not own
        ]

    def _bulk(self, updates: Sequence[ScoreUpdate], field_ids: Mapping[str, int], report: PushReport) -> None:
        """Queue every import of the push first, then wait for them all (§7: imports are async).

        Waiting for each batch before queueing the next would leave the budget idle while the
        platform processes; queued first, the batches are processed side by side and the waits
        overlap. Each POST also holds a slot of the §7 import cap (100 a minute, shared by the
        account), so a long push is paced instead of meeting the cap's HTTP 400.
        """
        pending: list[_Batch] = []
        for part in self._parts(updates, field_ids):
            batch = self._submit(part, report)
            if batch is not None:
                pending.append(batch)
        self._await_all(pending, report)

    def _parts(self, updates: Sequence[ScoreUpdate], field_ids: Mapping[str, int]) -> list[list[_Item]]:
        """Imports of at most 250 contacts (§7), of even size so none falls under the suggested
        minimum of 10 (251 contacts make 126 + 125, not 250 + 1), each under 400,000 bytes."""
        items = [(u, self._import_item(u, field_ids)) for u in updates]
        count = -(-len(items) // MAX_IMPORT_CONTACTS)
        size = -(-len(items) // max(count, 1))
        return [part for start in range(0, len(items), size) for part in _fit(items[start : start + size])]

    def _submit(self, part: list[_Item], report: PushReport) -> _Batch | None:
        updates = [update for update, _ in part]
        try:
            reply = self.c.request(
                "POST",
                "import/bulk_import",
                json={"contacts": [item for _, item in part]},
                limiter=self.c.import_limiter,
            )
        except ConnectorError as exc:
            for update in updates:
                report.failed.append(
                    PushFailure(update.remote_id, _reason(exc), isinstance(exc, RetriableError))
                )
            return None
        body = reply.body or {}
        batch_id = body.get("batchId")
        success = body.get("success", body.get("Success"))  # §7: "Success" or "success"
        if not batch_id or str(success) != "1":
            for update in updates:
                report.failed.append(
                    PushFailure(update.remote_id, f"bulk import not queued: {body.get('message')}", True)
                )
            return None
        return _Batch(str(batch_id), updates, time.monotonic() + self.poll_interval_s, self.poll_interval_s)

    def _import_item(self, update: ScoreUpdate, field_ids: Mapping[str, int]) -> dict[str, Any]:
        # §7: snake_case keys; "fields":[{"id","value"}]; "tags": names, created when missing.
        item: dict[str, Any] = {"email": update.email}
        fields = self._fields_of(update, field_ids)
        if fields:
            item["fields"] = [{"id": field_id, "value": value} for field_id, value in fields]
        if update.tags_add:
            item["tags"] = list(update.tags_add)
        return item

    def _await_all(self, pending: Sequence[_Batch], report: PushReport) -> None:
        """Poll ``/import/info`` for the oldest batch still processing until every batch is done.

        A batch is first asked about ``import_poll_s`` (default 0.2 s) after it was queued, then
        at growing intervals (x1.5, at most 5 s): §7 gives no processing time, so the first
        answer comes soon after a quick import and a slow one costs few requests. Only the oldest
        batch is polled while it processes (later ones were queued later); once it completes,
        the next is asked at once if it is due. ``import_timeout_s`` bounds the whole wait.
        """
        deadline = time.monotonic() + self.poll_timeout_s
        queue = deque(pending)
        while queue:
            batch = queue[0]
            delay = batch.next_poll - time.monotonic()
            if delay > 0:
                # ends at once on a stop; the queued import stays PENDING (sync.writeback)
                stopping.sleep(delay, where="while polling a bulk import")
            try:
                reply = self.c.request("GET", "import/info", params={"batchId": batch.batch_id})
            except ConnectorError as exc:
                queue.popleft()
                self._fail(batch, f"import status unknown: {_reason(exc)}", report)
                continue
            body = reply.body or {}
            status = str(body.get("status", ""))
            if status.lower() == "completed":
                queue.popleft()
                self._settle(batch, body, report)
                continue
            now = time.monotonic()
            if now > deadline:
                for late in queue:
                    self._fail(late, f"bulk import {late.batch_id} still {status or 'not completed'}", report)
                return
            batch.interval = min(batch.interval * POLL_BACKOFF, max(POLL_MAX_S, self.poll_interval_s))
            batch.next_poll = now + batch.interval

    @staticmethod
    def _fail(batch: _Batch, reason: str, report: PushReport) -> None:
        for update in batch.part:
            report.failed.append(PushFailure(update.remote_id, reason, True))

    @staticmethod
    def _settle(batch: _Batch, body: Mapping[str, Any], report: PushReport) -> None:
        """The per-contact report of a completed batch: its ``success`` ids and ``failure`` emails."""
        succeeded = {str(i) for i in body.get("success") or []}
        failed_emails = {str(e).strip().lower() for e in body.get("failure") or []}
        for update in batch.part:
            if update.email.strip().lower() in failed_emails:
                report.failed.append(PushFailure(update.remote_id, "bulk import rejected this contact"))
            elif update.remote_id not in succeeded:
                # The import matched by email and wrote a different contact (the email moved) or did
                # not say: report it rather than claim success.
                report.failed.append(
                    PushFailure(
                        update.remote_id, "bulk import did not confirm this contact id (email changed?)", True
                    )
                )

    def _sync_one(self, update: ScoreUpdate, field_ids: Mapping[str, int], report: PushReport) -> None:
        fields = self._fields_of(update, field_ids)
        try:
            if fields:
                # §2 PUT /contacts/{id}: by id, so an email changed since the last pull does not
                # matter; no email in the body (it would change the contact's email back).
                self.c.request(
                    "PUT",
                    f"contacts/{update.remote_id}",
                    json={"contact": {"fieldValues": [{"field": str(f), "value": v} for f, v in fields]}},
                )
            for name in update.tags_add:
                tag_id = self._tag_id(name, create=True)
                self.c.request(
                    "POST", "contactTags", json={"contactTag": {"contact": update.remote_id, "tag": tag_id}}
                )
        except ConnectorError as exc:
            report.failed.append(PushFailure(update.remote_id, _reason(exc), isinstance(exc, RetriableError)))

    def _remove_tags(self, update: ScoreUpdate, report: PushReport) -> None:
        wanted = {t.lower() for t in self._own(update.tags_remove)}
        try:
            for page in self.c._pages(CONTACT_TAGS, path_params={"id": update.remote_id}):
                for row in page.records:
                    name = self._tag_name(str(row.get("tag")))
                    if name is not None and name.lower() in wanted:
                        try:
                            self.c.request("DELETE", f"contactTags/{row['id']}")
                        except NotFound:
                            pass  # already gone: the goal state holds
        except ConnectorError as exc:
            report.failed.append(
                PushFailure(update.remote_id, f"tag removal: {_reason(exc)}", isinstance(exc, RetriableError))
            )

    # --- tag lookups -------------------------------------------------------------------------

    _tags: dict[str, str] | None = None  # name (lower) -> id

    def _load_tags(self) -> dict[str, str]:
        if self._tags is None:
            tags: dict[str, str] = {}
            root = self.prefix.rstrip("_:- ")
            for page in self.c._pages(TAGS, params={"search": root} if root else None):
                for tag in page.records:
                    tags[str(tag.get("tag", "")).lower()] = str(tag.get("id"))
            self._tags = tags
        return self._tags

    def _tag_id(self, name: str, *, create: bool) -> str:
        tags = self._load_tags()
        found = tags.get(name.lower())
        if found is None and create:
            try:
                reply = self.c.request(
                    "POST",
                    "tags",
                    json={"tag": {"tag": name, "tagType": "contact", "description": "leadsync"}},
                )
                found = str((reply.body or {})["tag"]["id"])
            except FatalError as exc:
                if exc.status != 422:  # §4: duplicate behaviour unconfirmed; look it up again
                    raise
                self._tags = None
                found = self._load_tags().get(name.lower())
                if found is None:
                    raise
            tags[name.lower()] = found
        if found is None:
            raise NotFound(f"tag {name!r} does not exist")
        return found

    def _tag_name(self, tag_id: str) -> str | None:
        for name, known in self._load_tags().items():
            if known == tag_id:
                return name
        return None


@dataclass
class _Batch:
    """A queued import and when to ask about it next."""

    batch_id: str
    part: list[ScoreUpdate]
    next_poll: float  # time.monotonic()
    interval: float


_Item = tuple[ScoreUpdate, dict[str, Any]]  # an update and its import item (§7 shape)


def _fit(chunk: list[_Item]) -> list[list[_Item]]:
    """Split a chunk until each request body is under the 400,000-byte cap (§7)."""
    size = len(json.dumps({"contacts": [item for _, item in chunk]}).encode())
    if size < MAX_IMPORT_BYTES - 1024 or len(chunk) == 1:
        return [chunk]
    middle = len(chunk) // 2
    return _fit(chunk[:middle]) + _fit(chunk[middle:])


def _reason(exc: ConnectorError) -> str:
    return str(exc).splitlines()[0][:300]
