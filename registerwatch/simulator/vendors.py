"""Which simulator app serves which vendor, and the config a synced school needs to reach it.

`registerwatch simulate` and `registerwatch demo` both start simulators from here, so the
credentials a simulator accepts and the config that points at it never drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import FaultInjector, SimulatorServer, VendorApp

VENDORS = ("arbor", "isams", "go4schools")


@dataclass(frozen=True)
class SimulatorProfile:
    """How to reach one vendor's simulator: URL suffix and the credentials it accepts."""

    vendor: str
    path: str  # appended to the server URL to make the config's base_url
    credentials: Mapping[str, str]  # credential key -> the simulator's default value

    def base_url(self, server_url: str) -> str:
        return server_url.rstrip("/") + self.path

    def env_names(self, school_id: str) -> dict[str, str]:
        """Environment variable names for each credential, e.g. OAKFIELD_ARBOR_PASSWORD."""
        prefix = f"{school_id.upper().replace('-', '_')}_{_VENDOR_ENV[self.vendor]}"
        return {key: f"{prefix}_{key.upper()}" for key in self.credentials}


_VENDOR_ENV = {"arbor": "ARBOR", "isams": "ISAMS", "go4schools": "G4S"}

PROFILES: dict[str, SimulatorProfile] = {
    "arbor": SimulatorProfile(
        "arbor", "/rest-v2", {"username": "registerwatch", "password": "simulator"}
    ),
    "isams": SimulatorProfile(
        "isams", "", {"client_id": "registerwatch", "client_secret": "simulator"}
    ),
    "go4schools": SimulatorProfile("go4schools", "/customer/v1", {"api_key": "simulator-key"}),
}


def build_app(
    vendor: str,
    school: GeneratedSchool,
    *,
    faults: FaultInjector | None = None,
    serve_amendments: bool = True,
) -> VendorApp:
    """The vendor-style app serving ``school`` with the profile's default credentials."""
    if vendor == "arbor":
        from registerwatch.simulator.arbor import ArborApp

        return ArborApp(school, faults, serve_amendments=serve_amendments)
    if vendor == "isams":
        from registerwatch.simulator.isams import IsamsApp

        return IsamsApp(school, faults, serve_amendments=serve_amendments)
    if vendor == "go4schools":
        from registerwatch.simulator.go4schools import Go4SchoolsApp

        return Go4SchoolsApp(school, faults, serve_amendments=serve_amendments)
    raise ValueError(f"no simulator for vendor {vendor!r}; choose one of {', '.join(VENDORS)}")


def school_config(school: GeneratedSchool, vendor: str, server_url: str) -> dict[str, Any]:
    """A ``[[schools]]`` table (as a dict) that syncs ``school`` from its simulator."""
    profile = PROFILES[vendor]
    calendar = school.calendar
    mis: dict[str, Any] = {"vendor": vendor, "base_url": profile.base_url(server_url)}
    for key, env in profile.env_names(school.school.id).items():
        mis[f"{key}_env"] = env
    times = calendar.register_times
    return {
        "id": school.school.id,
        "urn": school.school.urn,
        "laestab": school.school.laestab,
        "name": school.school.name,
        "la_code": school.school.la_code,
        "phase": school.school.phase,
        "mis": mis,
        "calendar": {
            "terms": [{"start": t.start, "end": t.end} for t in calendar.terms],
            "closures": [
                {
                    "date": c.date,
                    "session": c.session,
                    "kind": c.kind.value,
                    **({"reason": c.reason} if c.reason else {}),
                }
                for c in calendar.closures
            ],
            "register_times": {
                "am_open": times.am_open,
                "pm_open": times.pm_open,
                "close_after_minutes": times.close_after_minutes,
            },
        },
    }


def credentials_environ(school_id: str, vendor: str) -> dict[str, str]:
    """Environment entries holding the simulator's default credentials for ``school_id``."""
    profile = PROFILES[vendor]
    names = profile.env_names(school_id)
    return {names[key]: value for key, value in profile.credentials.items()}


def serve_mixed_schools(
    count: int,
    pupils: int,
    as_of: date,
    servers: list[SimulatorServer],
    vendors: tuple[str, ...] = ("arbor", "isams", "go4schools"),
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Generate ``count`` schools (``school01``...; the vendors in turn) and serve each from its
    own loopback simulator, appended to ``servers`` as it starts (the caller stops them, also
    after a failure part-way). Returns each school's config table and the credentials' env."""
    tables: list[dict[str, Any]] = []
    env: dict[str, str] = {}
    for n in range(count):
        vendor = vendors[n % len(vendors)]
        school_id = f"school{n + 1:02d}"
        school = generate_school(
            n + 1,
            pupils,
            school_id=school_id,
            vendor=vendor,
            as_of=as_of,
            inject_breaches=pupils >= 80,
        )
        server = SimulatorServer(build_app(vendor, school)).start()
        servers.append(server)
        tables.append(school_config(school, vendor, server.url))
        env.update(credentials_environ(school_id, vendor))
    return tables, env
