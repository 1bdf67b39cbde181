"""CRM search semantics (hubspot.md §2.5): filters, one sort, ``after`` as an offset, the caps.

Pure: takes the records and the property definitions, returns the page or raises RequestError.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

from leadsync.sandbox.hubspot.schema import PropertyDef
from leadsync.sandbox.hubspot.state import CrmObject, RequestError, parse_time

__all__ = ["MAX_PAGE", "MAX_RESULTS", "search_page"]

MAX_PAGE = 200  # hubspot.md §2.5: max 200 per page
MAX_RESULTS = 10_000  # hubspot.md §2.5: 10,000 results per query; paging beyond answers 400
MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 6, 18  # §2.5 (the current docs' figures)
OPERATORS = {
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
}


def _key(prop: PropertyDef | None, value: Any) -> Any:
    if value is None or value == "":
        return None
    if prop is not None and prop.type in ("datetime", "date"):
        return parse_time(value).timestamp()
    if prop is not None and prop.type == "number":
        return float(value)
    return str(value).lower()


def _matches(obj: CrmObject, flt: dict[str, Any], defs: dict[str, PropertyDef]) -> bool:
    name, op = flt["propertyName"], flt["operator"]
    prop = defs.get(name)
    raw = obj.id if name == "hs_object_id" else obj.properties.get(name)
    if op == "HAS_PROPERTY":
        return raw not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return raw in (None, "")
    have = _key(prop, raw)
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = str(flt.get("value", "")).lower()
        tokens = str(raw or "").lower().replace("@", " ").replace(".", " ").split() + [str(raw or "").lower()]
        found = any(fnmatch.fnmatchcase(t, pattern) for t in tokens)
        return found if op == "CONTAINS_TOKEN" else not found
    if op in ("IN", "NOT_IN"):
        values = {_key(prop, v) for v in flt.get("values") or []}
        return (have in values) if op == "IN" else (have not in values)
    want = _key(prop, flt.get("value"))
    if op == "EQ":
        return have == want
    if op == "NEQ":
        return have != want
    if have is None or want is None:
        return False
    if op == "BETWEEN":
        high = _key(prop, flt.get("highValue"))
        return high is not None and want <= have <= high
    return {"LT": have < want, "LTE": have <= want, "GT": have > want, "GTE": have >= want}[op]


def _validate(body: dict[str, Any], defs: dict[str, PropertyDef]) -> None:
    groups = body.get("filterGroups") or []
    if len(groups) > MAX_GROUPS:
        raise RequestError(400, f"Too many filter groups ({len(groups)}); the limit is {MAX_GROUPS}.")
    total = 0
    for group in groups:
        filters = group.get("filters") or []
        total += len(filters)
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise RequestError(
                400, f"Too many filters in a group ({len(filters)}); the limit is {MAX_FILTERS_PER_GROUP}."
            )
        for flt in filters:
            if flt.get("operator") not in OPERATORS or not flt.get("propertyName"):
                raise RequestError(400, f"Invalid filter: {flt}")
            prop = defs.get(flt["propertyName"])
            try:
                for v in [flt.get("value"), flt.get("highValue"), *(flt.get("values") or [])]:
                    _key(prop, v)
            except (ValueError, OverflowError):
                raise RequestError(400, f"Invalid filter value for {flt['propertyName']}: {flt}") from None
    if total > MAX_FILTERS:
        raise RequestError(400, f"Too many filters ({total}); the limit is {MAX_FILTERS}.")
    query = body.get("query")
    if query is not None and len(str(query)) > 3000:
        raise RequestError(400, "The query is longer than 3000 characters.")


def search_page(
    objects: Iterable[CrmObject],
    body: dict[str, Any],
    defs: dict[str, PropertyDef],
    default_properties: list[str],
) -> dict[str, Any]:
    _validate(body, defs)
    try:
        limit = int(body.get("limit") or 10)
        after = int(
            body.get("after") or 0
        )  # hubspot.md §2.5: "format the value in the after parameter as an integer"
    except (TypeError, ValueError):
        raise RequestError(400, "limit and after must be integers") from None
    if limit < 1 or limit > MAX_PAGE:
        raise RequestError(400, f"limit must be between 1 and {MAX_PAGE}")
    if after + limit > MAX_RESULTS and after >= MAX_RESULTS:
        raise RequestError(400, f"Paging beyond {MAX_RESULTS} results is not supported; narrow the query.")
    groups = body.get("filterGroups") or []
    rows = [
        o
        for o in objects
        if not o.archived
        and (not groups or any(all(_matches(o, f, defs) for f in g.get("filters") or []) for g in groups))
    ]
    sorts = body.get("sorts") or []
    if sorts:  # hubspot.md §2.5: only one sort rule is applied
        sort = (
            sorts[0]
            if isinstance(sorts[0], dict)
            else {
                "propertyName": str(sorts[0]).lstrip("-"),
                "direction": "DESCENDING" if str(sorts[0]).startswith("-") else "ASCENDING",
            }
        )
        name = sort.get("propertyName")
        prop = defs.get(name)
        reverse = sort.get("direction") == "DESCENDING"

        def sort_key(o: CrmObject) -> tuple[int, Any, int]:
            value = int(o.id) if name == "hs_object_id" else _key(prop, o.properties.get(name))
            return (value is None, value if value is not None else 0, int(o.id))

        rows.sort(key=sort_key, reverse=reverse)
    else:
        rows.sort(key=lambda o: int(o.id))
    page = rows[after : min(after + limit, MAX_RESULTS)]
    names = [n for n in (body.get("properties") or default_properties) if n in defs]
    body_out: dict[str, Any] = {"total": len(rows), "results": [o.to_json(names) for o in page]}
    if after + limit < len(rows):
        body_out["paging"] = {"next": {"after": str(after + limit)}}
    return body_out
