"""The narrow SDK adapter: what the SDK hands back becomes the httpx answer the core classifies."""

from __future__ import annotations

import http.server
import socketserver
import threading
from typing import Any

import httpx
import orjson
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


class _Bodies(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    connections = 0


class _BodyHandler(http.server.BaseHTTPRequestHandler):
    """``/whole/<n>``: n bytes of JSON with a Content-Length; ``/chunked/<n>``: the same in 8 KiB
    chunks; ``/cut/<n>``: a Content-Length of n and half of it, then the connection closes."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        type(self.server).connections += 1

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        kind, size = self.path.strip("/").split("/")
        body = _json_of(int(size))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if kind == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 8192):
                part = body[start : start + 8192]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if kind == "whole" else body[: len(body) // 2])
        if kind == "cut":
            self.close_connection = True


def _json_of(size: int) -> bytes:
    return b'{"pad":"' + b"x" * max(0, size - 10) + b'"}'


@pytest.fixture
def body_server() -> Any:
    server = _Bodies(("127.0.0.1", 0), _BodyHandler)
    _Bodies.connections = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("kind", ["whole", "chunked"])
def test_a_large_body_is_read_whole_and_its_connection_kept_for_the_next_request(body_server, kind) -> None:
    api = PooledApiClient({"api_key": "k-us6"}, max_connections=2, timeout=(5.0, 5.0))
    for size in (300_000, 10, 70_000):
        response = api.request("GET", f"{body_server}/{kind}/{size}")
        assert response.json() == orjson.loads(_json_of(size))
        assert len(response.content) == len(_json_of(size))
    assert _Bodies.connections == 1  # the body was read to its end, so its socket went back to the pool
    api.close()


def test_a_body_cut_short_raises_requests_own_error_and_the_next_request_goes_through(body_server) -> None:
    api = PooledApiClient({"api_key": "k-us6"}, max_connections=1, timeout=(5.0, 5.0))
    # the error the SDK wraps in ApiClientError, which SdkTransport maps to httpx.RemoteProtocolError
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.request("GET", f"{body_server}/cut/100000")
    assert api.request("GET", f"{body_server}/whole/20").json() == orjson.loads(_json_of(20))
    api.close()
