"""The one narrow adapter between leadsync and the ``mailchimp-marketing`` 3.0.80 SDK.

That SDK calls module-level ``requests.get/post/...``: no ``Session`` (every call opens a new TCP
connection), and the only timeout is one number for connect and read (mailchimp.md §11). We do not
patch the module. Instead :class:`PooledApiClient` subclasses the SDK's ``ApiClient`` and replaces
only its ``request`` method, sending through one ``requests.Session`` whose pool holds at most
``max_connections`` sockets (``pool_block=True``: a 11th caller waits for a free socket instead of
opening one) with an explicit ``(connect, read)`` timeout. :func:`build_sdk_client` hands that
ApiClient to every API object of a ``mailchimp_marketing.Client``.

:func:`sdk_outcome` turns what the SDK hands back into either the parsed JSON or an exception of
``connectors.errors``. The SDK has three failure shapes (mailchimp.md §11):

* ``ApiClientError(text, status_code=int)`` for an HTTP error with a body (``text`` is a *str*
  for ``application/problem+json``, a dict for ``application/json``);
* ``ApiClientError(text=<requests exception>, status_code=None)`` for a transport failure;
* a raw ``requests.Response`` for an HTTP error with an empty body (the bodiless 429/403 of §9),
  for 204s, and for a 2xx whose JSON does not parse (a truncated body).

:class:`SdkTransport` is an ``httpx`` transport that performs every request by calling the SDK
operation declared for it in :data:`OPERATIONS` (endpoints as data), and turns the outcome back
into an ``httpx.Response``. So the shared core (the page loop, the one retry policy with its
classification table, the concurrency limiter, the paginators) drives the SDK unchanged: a
bodiless 429 from the SDK is an ``httpx.Response(429)`` with no body to that table, exactly as it
would be from httpx.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import mailchimp_marketing
import orjson
import requests
from mailchimp_marketing.api_client import ApiClient, ApiClientError
from requests.adapters import HTTPAdapter

from leadsync.connectors.errors import ConfigError
from leadsync.connectors.retry import PARSED_JSON

__all__ = [
    "DEFAULT_HOST",
    "OPERATIONS",
    "HttpOutcome",
    "Operation",
    "SdkTransport",
    "PooledApiClient",
    "build_sdk_client",
    "parse_error_body",
    "sdk_outcome",
]

# mailchimp.md §2: the SDK's default host; "server" is replaced by the data centre in every URL.
DEFAULT_HOST = "https://server.api.mailchimp.com/3.0"
CONNECT_TIMEOUT_S = 10.0


class _OrjsonResponse(requests.Response):
    """The SDK parses every body with ``res.json()``; orjson does it several times faster."""

    def json(self, **kwargs: Any) -> Any:
        return orjson.loads(self.content)

    def read_body(self) -> None:
        """Read the whole body now, in one read: ``Response.content`` reads it 10 KiB at a time,
        each read through urllib3's buffers (a 500-item email-activity page is about 110 KiB: 11 reads). Errors
        are requests' own, as from ``content`` (``iter_content`` maps urllib3's)."""
        if self._content is False:
            self._content = b"".join(self.iter_content(None)) or b""


class _Session(requests.Session):
    """A ``requests.Session`` that reads the environment's proxy and CA bundle settings once per
    host, not on every request: ``merge_environment_settings`` walks ``os.environ`` for proxies on
    each call, which was a tenth of the CPU a Mailchimp pull spent (issue 23's profile)."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, tuple(sorted((proxies or {}).items())), stream, verify, cert)
        merged = self._environment.get(key)
        if merged is None:
            merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = merged
        return {**merged, "proxies": dict(merged["proxies"])}


class PooledApiClient(ApiClient):
    """The SDK's ApiClient sending through one pooled ``requests.Session`` with timeouts."""

    def __init__(
        self, config: Mapping[str, Any], *, max_connections: int, timeout: tuple[float, float]
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        super().__init__(dict(config))
        self.connect_read_timeout = timeout
        self.session: requests.Session = _Session()
        adapter = HTTPAdapter(
            pool_connections=1, pool_maxsize=max_connections, pool_block=True, max_retries=0
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def request(self, method, url, query_params=None, headers=None, body=None):  # type: ignore[no-untyped-def]
        # Same wire behaviour as ApiClient.request (mailchimp.md §1: Basic with username "user",
        # or Bearer for OAuth tokens), through the session and with an explicit timeout.
        headers = dict(headers or {})
        auth = ("user", self.api_key) if self.is_basic_auth else None
        if self.is_oauth:
            headers["Authorization"] = "Bearer " + self.access_token
        data = json.dumps(body) if method in {"POST", "PUT", "PATCH"} else None
        response = self.session.request(
            method,
            url,
            params=query_params,
            headers=headers,
            data=data,
            auth=auth,
            timeout=self.connect_read_timeout,
            allow_redirects=False,
            stream=True,  # read below, in one piece
        )
        response.__class__ = _OrjsonResponse  # same object, faster .json() (a subclass adds no state)
        try:
            response.read_body()
        except BaseException:
            response.close()
            raise
        return response

    def close(self) -> None:
        self.session.close()

    def __repr__(self) -> str:  # never show the key
        return f"PooledApiClient(host={self.host!r})"


def build_sdk_client(
    *,
    api_key: str | None = None,
    access_token: str | None = None,
    server: str | None = None,
    host: str | None = None,
    max_connections: int,
    timeout_s: float,
) -> mailchimp_marketing.Client:
    """A ``mailchimp_marketing.Client`` whose every API object uses one :class:`PooledApiClient`.

    ``host`` overrides the SDK's ``https://server.api.mailchimp.com/3.0`` (the sandbox, a proxy).
    It must not contain "server": the SDK replaces every occurrence in the URL (mailchimp.md §2).
    """
    if host is not None and "server" in host:
        raise ConfigError(
            f"base_url {host!r} contains 'server', which mailchimp-marketing rewrites to the data centre "
            "(mailchimp.md §2); use an address without it (127.0.0.1, localhost, an IP)"
        )
    config: dict[str, Any] = {"timeout": timeout_s}
    if api_key:
        config["api_key"] = api_key
    if access_token:
        config["access_token"] = access_token
    if server:
        config["server"] = server
    api_client = PooledApiClient(
        config, max_connections=max_connections, timeout=(min(CONNECT_TIMEOUT_S, timeout_s), timeout_s)
    )
    if host is not None:
        api_client.host = host.rstrip("/")
    elif api_client.server in {"", "invalid-server"}:
        # mailchimp.md §1-2: the data centre comes from the key's "-us6" suffix, or "server" for OAuth.
        raise ConfigError(
            "cannot tell the Mailchimp data centre: use a key ending in '-<dc>' or set option 'server'"
        )
    client = mailchimp_marketing.Client()
    client.api_client = api_client
    for api in vars(client).values():
        if hasattr(api, "api_client"):
            api.api_client = api_client
    return client


@dataclass(frozen=True)
class HttpOutcome:
    """A failed SDK call, reduced to what classification needs.

    ``status`` is None for a transport failure (then ``exception`` is the requests exception).
    ``body`` is the parsed JSON error body when there was one, else None (bodiless 429/403).
    """

    status: int | None
    headers: Mapping[str, str]
    body: Any = None
    text: str = ""
    exception: BaseException | None = None


def parse_error_body(text: Any) -> Any:
    """``ApiClientError.text`` as JSON: a str for problem+json, already a dict for application/json."""
    if isinstance(text, (dict, list)):
        return text
    if isinstance(text, str):
        try:
            return json.loads(text)
        except ValueError:
            return None
    return None


def sdk_outcome(call: Any, *args: Any, **kwargs: Any) -> tuple[Any, HttpOutcome | None]:
    """Run one SDK call. Return ``(result, None)`` on success or ``(None, outcome)`` on failure.

    Success is a parsed JSON dict, or ``None`` for a bodiless 2xx (204 tag updates). A 2xx whose
    body should have been JSON but did not parse is reported as a failure with ``status=200`` and
    ``body=None`` so the caller can treat it as a malformed response.
    """
    try:
        result = call(*args, **kwargs)
    except ApiClientError as exc:
        if exc.status_code is None:
            err = exc.text if isinstance(exc.text, BaseException) else None
            return None, HttpOutcome(
                status=None, headers={}, text=str(type(exc.text).__name__), exception=err
            )
        body = parse_error_body(exc.text)
        return None, HttpOutcome(status=int(exc.status_code), headers={}, body=body, text=_short(exc.text))
    if isinstance(result, requests.Response):
        headers = dict(result.headers)
        if not result.ok:  # bodiless 4xx/5xx: the SDK returns the Response instead of raising
            return None, HttpOutcome(status=result.status_code, headers=headers, text=_short(result.text))
        if result.content and "json" in result.headers.get("content-type", ""):
            try:
                parsed = result.json()
            except ValueError:
                return None, HttpOutcome(status=result.status_code, headers=headers, text=_short(result.text))
            return parsed, None  # e.g. a 200 with "{}" (codegen#135)
        if result.content:  # a 2xx with a body that is not JSON: HTML from a proxy, a cut body
            return None, HttpOutcome(status=result.status_code, headers=headers, text=_short(result.text))
        return None, None  # 204 / empty 2xx
    return result, None


def _short(text: Any, limit: int = 300) -> str:
    return str(text)[:limit]


# --- the httpx transport over the SDK ----------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One SDK operation: the HTTP shape it serves and the SDK method that performs it.

    ``path`` uses Mailchimp's real placeholder names (the spec's are camelCased, mailchimp.md
    source key [SPEC]); they are passed to the SDK positionally, in order, then the JSON body when
    ``body`` is set, then the query as keyword arguments.
    """

    method: str
    path: str
    api: str
    call: str
    body: bool = False
    body_first: bool = False  # the SDK method takes the body before the path arguments

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\\{[a-z_]+\\}", "([^/]+)", re.escape(self.path)) + "/?$")


OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/ping", "ping", "get"),
    Operation("GET", "/lists", "lists", "get_all_lists"),
    Operation("GET", "/lists/{list_id}", "lists", "get_list"),
    Operation("POST", "/lists/{list_id}", "lists", "batch_list_members", body=True),
    Operation("GET", "/lists/{list_id}/members", "lists", "get_list_members_info"),
    Operation("GET", "/lists/{list_id}/members/{subscriber_hash}", "lists", "get_list_member"),
    Operation(
        "PATCH", "/lists/{list_id}/members/{subscriber_hash}", "lists", "update_list_member", body=True
    ),
    Operation("PUT", "/lists/{list_id}/members/{subscriber_hash}", "lists", "set_list_member", body=True),
    Operation("GET", "/lists/{list_id}/members/{subscriber_hash}/tags", "lists", "get_list_member_tags"),
    Operation(
        "POST",
        "/lists/{list_id}/members/{subscriber_hash}/tags",
        "lists",
        "update_list_member_tags",
        body=True,
    ),
    Operation(
        "GET",
        "/lists/{list_id}/members/{subscriber_hash}/activity-feed",
        "lists",
        "get_list_member_activity_feed",
    ),
    # mailchimp.md §6: tags are static segments; bulk tagging and the lookup by name
    Operation("GET", "/lists/{list_id}/tag-search", "lists", "tag_search"),
    Operation("POST", "/lists/{list_id}/segments", "lists", "create_segment", body=True),
    Operation(
        "POST",
        "/lists/{list_id}/segments/{segment_id}",
        "lists",
        "batch_segment_members",
        body=True,
        body_first=True,  # batch_segment_members(body, list_id, segment_id)
    ),
    # mailchimp.md §10: list webhooks (``leadsync webhooks setup``)
    Operation("GET", "/lists/{list_id}/webhooks", "lists", "get_list_webhooks"),
    Operation("POST", "/lists/{list_id}/webhooks", "lists", "create_list_webhook", body=True),
    Operation("PATCH", "/lists/{list_id}/webhooks/{webhook_id}", "lists", "update_list_webhook", body=True),
    Operation("GET", "/lists/{list_id}/merge-fields", "lists", "get_list_merge_fields"),
    Operation("POST", "/lists/{list_id}/merge-fields", "lists", "add_list_merge_field", body=True),
    Operation("GET", "/campaigns", "campaigns", "list"),
    Operation("GET", "/reports/{campaign_id}/email-activity", "reports", "get_email_activity_for_campaign"),
    Operation("GET", "/reports/{campaign_id}/open-details", "reports", "get_campaign_open_details"),
    Operation("GET", "/ecommerce/stores", "ecommerce", "stores"),
    Operation("GET", "/ecommerce/orders", "ecommerce", "orders"),
    # mailchimp.md §7: per store, the orders and the abandoned carts
    Operation("GET", "/ecommerce/stores/{store_id}/orders", "ecommerce", "get_store_orders"),
    Operation("GET", "/ecommerce/stores/{store_id}/carts", "ecommerce", "get_store_carts"),
)

# mailchimp.md §11: array query parameters must be Python lists, or the SDK splits the string
# into characters; numbers must be ints (the SDK compares count with 1000).
_LIST_PARAMS = frozenset({"fields", "exclude_fields", "activity_filters", "action", "interest_ids"})
_INT_PARAMS = frozenset({"count", "offset"})


class SdkTransport(httpx.BaseTransport):
    """An httpx transport that sends each request through the ``mailchimp-marketing`` SDK.

    ``prefix`` is the path the httpx client's ``base_url`` adds (``/3.0``); it is stripped before
    the operation is looked up. Thread-safe as the SDK is (no ``set_config`` after building).
    """

    def __init__(
        self,
        client: mailchimp_marketing.Client,
        *,
        prefix: str = "/3.0",
        operations: tuple[Operation, ...] = OPERATIONS,
    ) -> None:
        self.client = client
        self.prefix = prefix.rstrip("/")
        self._table = [(op, op.pattern) for op in operations]

    def resolve(self, method: str, path: str) -> tuple[Callable[..., Any], Operation, list[str]]:
        if self.prefix and path.startswith(self.prefix):
            path = path[len(self.prefix) :] or "/"
        for op, pattern in self._table:
            match = pattern.match(path) if op.method == method else None
            if match:
                fn = getattr(getattr(self.client, op.api), op.call)
                return fn, op, [unquote(part) for part in match.groups()]
        raise NotImplementedError(f"no mailchimp-marketing operation declared for {method} {path}")

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        fn, op, args = self.resolve(request.method, request.url.path)
        query: dict[str, Any] = {}
        for key, value in request.url.params.multi_items():
            if key in _LIST_PARAMS:
                query.setdefault(key, []).extend(v for v in value.split(",") if v)
            elif key in _INT_PARAMS:
                query[key] = int(value)
            else:
                query[key] = value
        call_args: list[Any] = list(args)
        if op.body:
            body = orjson.loads(request.content) if request.content else {}
            call_args = [body, *call_args] if op.body_first else [*call_args, body]
        result, failure = sdk_outcome(fn, *call_args, **query)
        if failure is None:
            content = orjson.dumps(result) if result is not None else b""
            status = 200 if result is not None else 204
            headers = {"content-type": "application/json"} if result is not None else {}
            # the SDK parsed the body already: the retry policy takes it as is (PARSED_JSON)
            extensions = {PARSED_JSON: result} if result is not None else {}
            return httpx.Response(
                status, headers=headers, content=content, request=request, extensions=extensions
            )
        if failure.status is None:
            raise _transport_error(failure.exception, request)
        if failure.body is not None:
            content = orjson.dumps(failure.body)
            headers = {"content-type": "application/problem+json"}
        else:
            content = failure.text.encode() if failure.status < 400 else b""
            headers = {
                k.lower(): v
                for k, v in failure.headers.items()
                if k.lower() in ("retry-after", "content-type")
            }
        return httpx.Response(failure.status, headers=headers, content=content, request=request)


def _transport_error(exc: BaseException | None, request: httpx.Request) -> httpx.TransportError:
    name = type(exc).__name__ if exc is not None else "unknown error"
    if isinstance(exc, requests.Timeout):
        return httpx.ReadTimeout(f"mailchimp-marketing: {name}", request=request)
    if isinstance(exc, requests.ConnectionError):
        return httpx.ConnectError(f"mailchimp-marketing: {name}", request=request)
    return httpx.RemoteProtocolError(f"mailchimp-marketing: {name}", request=request)
