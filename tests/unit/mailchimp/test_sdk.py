"""The narrow SDK adapter: what the SDK hands back becomes the httpx answer the core classifies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import requests
from mailchimp_marketing.api_client import ApiClientError

from leadsync.connectors.errors import ConfigError
from leadsync.connectors.mailchimp.sdk import PooledApiClient, SdkTransport, build_sdk_client


def _raw(status: int, body: bytes = b"", content_type: str | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body  # noqa: SLF001 - building a bare Response
    if content_type:
        response.headers["Content-Type"] = content_type
    return response


class FakeLists:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def get_list_members_info(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def _send(
    outcome: Any, url: str = "https://us6.api.mailchimp.com/3.0/lists/L1/members"
) -> tuple[httpx.Response, FakeLists]:
    lists = FakeLists(outcome)
    client = type("C", (), {"lists": lists})()
    transport = SdkTransport(client, prefix="/3.0")  # type: ignore[arg-type]
    with httpx.Client(transport=transport) as http:
        response = http.get(url, params={"count": "1000", "offset": "0", "fields": "members.id,total_items"})
    return response, lists


def test_given_query_when_sent_then_sdk_gets_lists_and_ints() -> None:
    _, lists = _send({"members": [], "total_items": 0})
    args, kwargs = lists.calls[0]
    assert args == ("L1",)
    assert kwargs == {"count": 1000, "offset": 0, "fields": ["members.id", "total_items"]}  # mailchimp.md §11


@pytest.mark.parametrize(
    ("outcome", "status", "body"),
    [
        ({"members": [], "total_items": 0}, 200, b'{"members":[],"total_items":0}'),
        (_raw(429), 429, b""),  # bodiless 429: the SDK returns the Response (mailchimp.md §11)
        (_raw(403), 403, b""),
        (_raw(204), 204, b""),
        (
            ApiClientError('{"status":404,"title":"Resource Not Found"}', 404),
            404,
            b'{"status":404,"title":"Resource Not Found"}',
        ),
        (
            ApiClientError({"status": 400, "title": "Invalid Resource"}, 400),
            400,
            b'{"status":400,"title":"Invalid Resource"}',
        ),
        (_raw(200, b'{"members": [', "application/json"), 200, b'{"members": ['),  # cut body: malformed
    ],
)
def test_given_sdk_outcome_when_sent_then_httpx_response(outcome: Any, status: int, body: bytes) -> None:
    response, _ = _send(outcome)
    assert response.status_code == status
    assert response.content == body


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (requests.ConnectionError("reset"), httpx.ConnectError),
        (requests.ReadTimeout("slow"), httpx.ReadTimeout),
        (requests.exceptions.ChunkedEncodingError("cut"), httpx.RemoteProtocolError),
    ],
)
def test_given_transport_failure_when_sent_then_httpx_transport_error(
    error: Exception, expected: type
) -> None:
    with pytest.raises(expected):
        _send(ApiClientError(error))


def test_given_host_with_server_when_built_then_refused() -> None:
    with pytest.raises(ConfigError, match="server"):
        build_sdk_client(api_key="k-us6", host="http://mockserver:1/3.0", max_connections=1, timeout_s=1)


def test_given_key_without_dc_when_built_for_production_then_refused() -> None:
    with pytest.raises(ConfigError, match="data centre"):
        build_sdk_client(api_key="nodash", max_connections=1, timeout_s=1)


def test_given_pooled_client_then_bounded_pool_timeouts_and_no_key_in_repr() -> None:
    client = build_sdk_client(api_key="secretkey-us6", max_connections=7, timeout_s=30)
    api = client.api_client
    assert isinstance(api, PooledApiClient)
    adapter = api.session.get_adapter("https://us6.api.mailchimp.com")
    assert adapter._pool_maxsize == 7 and adapter._pool_block  # noqa: SLF001
    assert api.connect_read_timeout == (10.0, 30)
    assert all(getattr(client, name).api_client is api for name in ("lists", "reports", "ping", "campaigns"))
    assert "secretkey" not in repr(api)
