"""An httpx client for the app that signs in as a browser would: it reads the CSRF token from
the page's form and keeps the session cookie."""

from __future__ import annotations

import re
from typing import Any

import httpx

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class WebClient:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)

    def token(self, page: str = "/login") -> str:
        found = TOKEN.search(self.http.get(page).text)
        assert found is not None, f"no CSRF token on {page}"
        return found.group(1)

    def sign_in(self, email: str, password: str) -> httpx.Response:
        return self.http.post(
            "/login", data={"csrf_token": self.token(), "email": email, "password": password}
        )

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True
    ) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.token("/account" if self.signed_in else "/login")
        return self.http.post(path, data=form)

    @property
    def signed_in(self) -> bool:
        return self.http.get("/account").status_code == 200

    def close(self) -> None:
        self.http.close()


def signed_in_client(base_url: str, email: str, password: str) -> WebClient:
    client = WebClient(base_url)
    response = client.sign_in(email, password)
    assert response.status_code == 303 and response.headers["location"] == "/", response.text
    return client
