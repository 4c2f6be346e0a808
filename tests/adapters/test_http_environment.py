"""ApiClient sends what ``requests.Session.request`` would: the same prepared request and the
same proxies, ``verify``, ``cert`` and ``stream`` from the environment (HTTPS_PROXY, NO_PROXY,
REQUESTS_CA_BUNDLE...), though it works the environment out once per host, not per request."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter
from urllib3 import HTTPResponse

from registerwatch.adapters.base import ApiClient, RetryPolicy

ENVIRONMENT = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))  # a developer's own ~/.netrc


class Recording(BaseAdapter):
    """A transport that answers ``{}`` and keeps what it was asked to send, and how."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[requests.PreparedRequest, dict[str, Any]]] = []

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        self.sent.append((request, kwargs))
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "application/json"
        response.raw = HTTPResponse(body=io.BytesIO(b"{}"), preload_content=False)
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


def recording_session() -> tuple[requests.Session, Recording]:
    session, transport = requests.Session(), Recording()
    session.mount("http://", transport)
    session.mount("https://", transport)
    return session, transport


def sent_by_client(base_url: str, path: str, params: Mapping[str, Any]) -> list[Any]:
    session, transport = recording_session()
    client = ApiClient(base_url, school_id="oakfield", credential_hint="hint", session=session)
    client.get_json(path, params)
    client.get_json(path, params)  # the second from the per-host settings
    return [described(request, kwargs) for request, kwargs in transport.sent]


def sent_by_requests(url: str, params: Mapping[str, Any]) -> Any:
    """What Session.request itself sends for the client's request (the reference)."""
    session, transport = recording_session()
    session.request(
        "GET",
        url,
        params=params,
        headers={},
        timeout=ApiClient("http://x", school_id="s", credential_hint="h").timeout,
        stream=True,
        allow_redirects=False,
    )
    ((request, kwargs),) = transport.sent
    return described(request, kwargs)


def described(request: requests.PreparedRequest, kwargs: dict[str, Any]) -> Any:
    return (request.method, request.url, dict(request.headers), request.body, kwargs)


CASES = {
    "no proxy": ({}, "http://mis.test/api"),
    "an HTTPS proxy": ({"HTTPS_PROXY": "http://proxy.school:3128"}, "https://mis.test/api"),
    "an HTTP proxy": ({"http_proxy": "http://proxy.school:3128"}, "http://mis.test/api"),
    "NO_PROXY naming the MIS": (
        {"HTTPS_PROXY": "http://proxy.school:3128", "NO_PROXY": "localhost,mis.test"},
        "https://mis.test/api",
    ),
    "NO_PROXY naming another host": (
        {"HTTPS_PROXY": "http://proxy.school:3128", "NO_PROXY": "other.test"},
        "https://mis.test/api",
    ),
    "a CA bundle": ({"REQUESTS_CA_BUNDLE": "/etc/school/ca.pem"}, "https://mis.test/api"),
    "a curl CA bundle": ({"CURL_CA_BUNDLE": "/etc/school/curl-ca.pem"}, "https://mis.test/api"),
}


@pytest.mark.parametrize("case", CASES)
def test_the_client_sends_what_session_request_sends(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment, base_url = CASES[case]
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    params = {"page-number": 2, "filters.startDatetime.from": "2025-09-01 00:00:00"}
    expected = sent_by_requests(f"{base_url}/attendance-records", params)
    assert sent_by_client(base_url, "attendance-records", params) == [expected, expected]


def test_the_proxy_settings_reach_the_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.school:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/school/ca.pem")
    ((*_, kwargs),) = sent_by_client("https://mis.test/api", "x", {})[:1]
    assert kwargs["proxies"]["https"] == "http://proxy.school:3128"
    assert kwargs["verify"] == "/etc/school/ca.pem"
    assert kwargs["stream"] is True


def test_each_host_gets_its_own_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """An absolute URL to another host (a paging link) is not sent with the first host's
    proxy decision."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.school:3128")
    monkeypatch.setenv("NO_PROXY", "direct.test")
    session, transport = recording_session()
    client = ApiClient("https://mis.test/api", school_id="s", credential_hint="h", session=session)
    client.get_json("x")
    client.get_json("https://direct.test/api/x")
    proxied, direct = (kwargs["proxies"] for _, kwargs in transport.sent)
    assert proxied.get("https") == "http://proxy.school:3128"
    assert "https" not in direct


def test_a_netrc_entry_is_still_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine mis.test login school password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    ((_, _, headers, _, _),) = sent_by_client("http://mis.test/api", "x", {})[:1]
    assert headers["Authorization"] == requests.auth._basic_auth_str("school", "secret")


# -- through a real proxy on loopback ----------------------------------------------------------


class _Proxy(BaseHTTPRequestHandler):
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        body = json.dumps({"via": "proxy"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Proxy", (_Proxy,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_requests_go_through_the_proxy_of_http_proxy(
    proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", address)
    client = ApiClient(
        "http://mis.invalid/api",
        school_id="s",
        credential_hint="h",
        retry=RetryPolicy(max_attempts=1),
    )
    try:
        assert client.get_json("students", {"page-number": 1}) == {"via": "proxy"}
        assert client.get_json("students", {"page-number": 2}) == {"via": "proxy"}
    finally:
        client.http.close()
    # A proxy is asked for the absolute URL.
    assert seen == [
        "http://mis.invalid/api/students?page-number=1",
        "http://mis.invalid/api/students?page-number=2",
    ]
