"""The adapters the contract suite runs over: ONE entry per vendor (see docs/adapters/new-vendor.md).

A case says how to build the adapter against a running simulator and how to ask for a page
size; everything else (faults, capabilities, quarantine shape) comes from the simulator and the
vendor's FACTS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from registerwatch.adapters.base import RetryPolicy, VendorFacts
from registerwatch.simulator.server import VendorApp

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0, max_retry_after=5.0)
HTTP_OPTIONS: dict[str, Any] = {
    "retry": FAST_RETRY,
    "sleep": lambda _s: None,
    "timeout": (2.0, 1.0),
}


@dataclass(frozen=True)
class ContractCase:
    vendor: str
    facts: Callable[[], VendorFacts]
    # (simulator base URL, school id) -> a ready adapter; credentials are the simulator's own.
    build: Callable[[str, str], Any]
    # Ask for pages of ``size`` records, on the adapter or on the simulator app.
    set_page_size: Callable[[Any, VendorApp, int], None]


def _arbor(url: str, school_id: str, page_size: int | None = None) -> Any:
    from registerwatch.adapters.arbor import ArborAdapter

    return ArborAdapter(
        school_id=school_id,
        base_url=url,
        credentials={"username": "registerwatch", "password": "simulator"},
        **HTTP_OPTIONS,
    )


def _arbor_pages(adapter: Any, app: VendorApp, size: int) -> None:
    adapter.client.paginator.page_size = size


def _isams(url: str, school_id: str) -> Any:
    from registerwatch.adapters.isams import IsamsAdapter

    return IsamsAdapter(
        school_id=school_id,
        base_url=url,
        credentials={
            "client_id": "registerwatch",
            "client_secret": "simulator",
            "api_key": "simulator-key",
        },
        **HTTP_OPTIONS,
    )


def _isams_pages(adapter: Any, app: VendorApp, size: int) -> None:
    adapter.rest_page_size = size


def _g4s(url: str, school_id: str) -> Any:
    from registerwatch.adapters.go4schools import Go4SchoolsAdapter

    return Go4SchoolsAdapter(
        school_id=school_id, base_url=url, credentials={"api_key": "simulator-key"}, **HTTP_OPTIONS
    )


def _g4s_pages(adapter: Any, app: VendorApp, size: int) -> None:
    app.page_size = size  # type: ignore[attr-defined]  # the vendor decides; its simulator too


def _facts(module: str) -> Callable[[], VendorFacts]:
    def load() -> VendorFacts:
        import importlib

        facts: VendorFacts = importlib.import_module(module).FACTS
        return facts

    return load


CASES = [
    ContractCase("arbor", _facts("registerwatch.adapters.arbor"), _arbor, _arbor_pages),
    ContractCase("isams", _facts("registerwatch.adapters.isams"), _isams, _isams_pages),
    ContractCase("go4schools", _facts("registerwatch.adapters.go4schools"), _g4s, _g4s_pages),
]
