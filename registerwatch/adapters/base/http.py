"""The one HTTP client every REST adapter uses: base URL, auth, timeouts, retry, counting.

Failure classification lives in one method (``ApiClient.classify``), which each vendor extends
for its own quirks (iSAMS deadlock bodies, HTML maintenance pages served with status 200...);
the retry policy is the shared one in ``registerwatch.retry``. Sync state (bookmarks, trailing
windows) belongs to ``registerwatch.sync``; adapters only read the window they are given.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog

from registerwatch import netguard
from registerwatch.adapters.base.inflight import DEFAULT_MAX_CONCURRENT_REQUESTS, abandoned
from registerwatch.adapters.base.pagination import MAX_RECORDS_PER_PAGE
from registerwatch.errors import (
    FatalApiError,
    MisTooSlowError,
    RetriableApiError,
    StopRequestedError,
    UnsafeResponseError,
)
from registerwatch.retry import RetryPolicy, backoff_delay, parse_retry_after

log = structlog.get_logger("registerwatch.adapters")

DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read (seconds): every request has one
# A third element, when given, is the whole request's wall-clock deadline (netguard.NetLimits).


class ApiClient:
    """One client per vendor: base URL, auth, timeouts, retries and failure classification."""

    vendor = "mis"

    def __init__(
        self,
        base_url: str,
        *,
        school_id: str,
        credential_hint: str,
        timeout: tuple[float, ...] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_bytes: int | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        max_records_per_page: int | None = None,
        max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # At most this many requests of this school in flight at once, where pages can be
        # asked ahead (Paginator.max_in_flight, inflight.fetch_in_order); vendors adopt it.
        self.max_concurrent_requests = max(1, max_concurrent_requests)
        # Read by the vendor's paginators (pagination.check_page_size); None: the default.
        self.max_records_per_page = max_records_per_page or MAX_RECORDS_PER_PAGE
        self.school_id = school_id
        self.credential_hint = credential_hint
        self.limits = netguard.NetLimits.from_timeout(
            timeout, **({"max_bytes": max_bytes} if max_bytes else {})
        )
        self.timeout = (self.limits.connect, self.limits.read)
        self.retry = retry or RetryPolicy()
        self.http = session or requests.Session()
        self._tracker = netguard.guard_session(self.http)
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.request_count = 0
        self._count_lock = threading.Lock()  # requests may be sent from several threads
        # (scheme, host) -> what Session.request would send there (see _environment_for)
        self._environments: dict[tuple[str, str], dict[str, Any]] = {}

    # -- hooks for vendors ------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        return {}

    def on_unauthorised(self) -> bool:
        """Called on a 401; return True when fresh credentials were obtained (retry once)."""
        return False

    def classify(self, response: requests.Response) -> None:
        """Raise RetriableApiError or FatalApiError for a failed response; return if usable."""
        status = response.status_code
        where = (
            f"school {self.school_id!r}: {self.vendor} {response.request.method} "
            f"{path_of(response.url)}"
        )
        if status == 429:
            raise RetriableApiError(
                f"{where} was rate limited (429)",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if 500 <= status <= 599:
            raise RetriableApiError(
                f"{where} failed with {status}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status in (401, 403):
            raise FatalApiError(f"{where}: MIS returned {status} — check {self.credential_hint}")
        if 400 <= status <= 499:
            raise FatalApiError(
                f"{where}: MIS returned {status} ({body_summary(response)}) — "
                "this request will not succeed on retry; check the base_url "
                "and the API permissions for this school"
            )
        content_type = response.headers.get("Content-Type", "")
        if "html" in content_type.lower() or response.text.lstrip()[:15].lower().startswith(
            ("<!doctype html", "<html")
        ):
            raise RetriableApiError(
                f"{where} returned an HTML page instead of data (MIS maintenance?)"
            )

    # -- the request loop -------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        parse: Callable[[requests.Response], Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Send with retries; return the response, or ``parse(response)`` when given.

        ``parse`` runs inside the retry loop, so a garbled body (a ValueError from the parser,
        e.g. truncated JSON from an overloaded MIS) is retried like a 5xx.
        """
        url = path if path.startswith("http") else f"{self.base_url}/{path.lstrip('/')}"
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            headers = {**kwargs.pop("headers", {}), **self.auth_headers()}
            try:
                with self._count_lock:
                    self.request_count += 1
                response = self._send(method, url, headers, kwargs)
                if response.status_code == 401 and not refreshed and self.on_unauthorised():
                    refreshed = True
                    attempt -= 1
                    continue
                self.classify(response)
                if parse is None:
                    return response
                try:
                    return parse(response)
                except RecursionError:
                    raise UnsafeResponseError(
                        f"school {self.school_id!r}: {self.vendor} {method} "
                        f"{path_of(response.url)} returned JSON nested too deeply to read "
                        f"({body_summary(response)}); refused"
                    ) from None
                except ValueError as exc:
                    raise RetriableApiError(
                        f"school {self.school_id!r}: {self.vendor} {method} "
                        f"{path_of(response.url)} returned a malformed body "
                        f"({body_summary(response)})"
                    ) from exc
            except (requests.Timeout, requests.ConnectionError) as exc:
                # A ConnectTimeout is both; either way the server was never reached in time.
                what = (
                    "did not answer in time"
                    if isinstance(exc, requests.Timeout)
                    else f"could not be reached at {self.base_url} (check base_url and the network)"
                )
                error: RetriableApiError = RetriableApiError(
                    f"school {self.school_id!r}: {self.vendor} {method} {path_of(url)} "
                    f"{what} ({type(exc).__name__})"
                )
            except MisTooSlowError:
                raise  # the deadline was the whole budget: retrying would double it
            except RetriableApiError as exc:
                error = exc
            # A request sent ahead whose page will not be used (past the end of the list) is
            # not worth a backoff: give up at once (inflight.abandoned).
            if attempt >= self.retry.max_attempts or abandoned():
                raise RetriableApiError(
                    f"{error} — gave up after {attempt} attempts; the next run will retry",
                    retry_after=error.retry_after,
                )
            delay = self._backoff(attempt, error.retry_after)
            log.warning(
                "adapter.request_retried",
                vendor=self.vendor,
                school=self.school_id,
                path=path_of(url),
                attempt=attempt,
                delay=round(delay, 2),
                reason=str(error),
            )
            self.sleep(delay)

    def _send(
        self, method: str, url: str, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> requests.Response:
        """One request, bounded by the wall-clock deadline and the size limit; its body read.

        Redirects are never followed: the credentials would go with them.
        """
        where = f"school {self.school_id!r}: {self.vendor} {method} {path_of(url)}"
        try:
            with netguard.guarded(self._tracker, self.limits.total) as watch:
                prepared = self._prepared(method, url, headers, kwargs)
                response = self.http.send(
                    prepared,
                    timeout=self.timeout,
                    allow_redirects=False,
                    **self._environment_for(prepared.url or url),
                )
                netguard.read_body(response, watch, self.limits.max_bytes)
        except netguard.DeadlineExceeded:
            raise MisTooSlowError(
                f"{where}: MIS too slow — no complete answer within {self.limits.total:.0f}s "
                "(the deadline for the whole request); this school fails for this run and the "
                "next run tries again"
            ) from None
        except netguard.Cancelled:
            raise StopRequestedError(f"{where}: stopped while waiting for the MIS") from None
        except netguard.BodyTooLarge:
            raise UnsafeResponseError(
                f"{where} returned more than {self.limits.max_bytes // 2**20} MB "
                "(after decompression); refused — raise max_response_mb if this is genuine"
            ) from None
        except requests.exceptions.ChunkedEncodingError as exc:
            raise RetriableApiError(f"{where}: the response was cut off mid-body") from exc
        except requests.exceptions.ContentDecodingError as exc:
            raise RetriableApiError(f"{where}: the response body could not be decoded") from exc
        if 300 <= response.status_code <= 399:
            target = urlsplit(response.headers.get("Location", "")).netloc or "elsewhere"
            raise UnsafeResponseError(
                f"{where} redirected ({response.status_code}) to {target}; redirects are "
                "refused so credentials never leave the configured host — set base_url to the "
                "address the MIS now uses"
            )
        return response

    def _prepared(
        self, method: str, url: str, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> requests.PreparedRequest:
        """The request as ``Session.request`` prepares it (the session's headers, cookies,
        hooks and any netrc credentials merged in)."""
        request = requests.Request(
            method=method.upper(),
            url=url,
            headers=headers,
            **{**kwargs, "params": kwargs.get("params") or {}, "data": kwargs.get("data") or {}},
        )
        return self.http.prepare_request(request)

    def _environment_for(self, url: str) -> dict[str, Any]:
        """The proxies, ``verify``, ``cert`` and ``stream`` that ``Session.request`` would send
        ``url`` with, worked out once per scheme and host for this client.

        ``Session.request`` reads them from the environment (``HTTPS_PROXY``, ``NO_PROXY``,
        ``REQUESTS_CA_BUNDLE``...) on every request, which cost about a tenth of a first
        sync's requests; they depend only on the environment, the session and the URL's
        scheme and host, and a client lives for one sync.
        """
        scheme, netloc = urlsplit(url)[:2]
        settings = self._environments.get((scheme, netloc))
        if settings is None:
            settings = dict(self.http.merge_environment_settings(url, {}, True, None, None))
            self._environments[(scheme, netloc)] = settings
        # A copy each time: requests may adjust the proxies it is handed.
        return {**settings, "proxies": dict(settings["proxies"])}

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = backoff_delay(self.retry, attempt, retry_after, self.rng)
        if delay is None:
            raise RetriableApiError(
                f"school {self.school_id!r}: {self.vendor} asked to wait {retry_after:.0f}s "
                "(Retry-After), longer than registerwatch waits; the next run will retry",
                retry_after=retry_after,
            )
        return delay

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params, parse=parse_json)


def parse_json(response: requests.Response) -> Any:
    return response.json()


def path_of(url: str) -> str:
    return urlsplit(url).path


def body_summary(response: requests.Response) -> str:
    """What came back, without quoting it: a body can hold pupil data or a token, and these
    messages reach logs."""
    content_type = response.headers.get("Content-Type", "no content type").split(";")[0]
    return f"{len(response.content)} bytes of {content_type}"
