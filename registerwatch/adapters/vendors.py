"""Every vendor's declared facts, by name: the one place that lists the vendors.

Each vendor declares its facts once (``FACTS`` in its ``client.py``, or ``adapter.py`` for the
CTF): auth and the credentials it takes, paging, capabilities, code aliases, the pm cut-off
default, and how to build its adapter. The config reads credential names and defaults from
here, and ``registry.build_adapter`` builds adapters from here.

Import direction (tests/test_architecture.py): ``config`` imports this module, so this module
and the facts modules it loads must never import ``registerwatch.config`` — they import only
``adapters.base``, ``schema``, ``errors`` and the like. ``registry`` (which turns settings into
constructor arguments) is the one adapters module that imports ``config``, and nothing in
``config`` imports ``registry``: the arrows run config -> vendors and registry -> config, and no
module ever waits on itself. The other way round (facts in ``config``) would make every vendor
folder import the config to learn its own facts, which is the spread this module ends.
"""

from __future__ import annotations

import importlib

from registerwatch.adapters.base.contract import VendorFacts
from registerwatch.schema import Vendor

# Where each vendor declares its FACTS (adding a vendor: one line here, one folder).
FACTS_MODULES: dict[Vendor, str] = {
    Vendor.ARBOR: "registerwatch.adapters.arbor.client",
    Vendor.ISAMS: "registerwatch.adapters.isams.client",
    Vendor.GO4SCHOOLS: "registerwatch.adapters.go4schools.client",
    Vendor.CTF: "registerwatch.adapters.ctf.adapter",
}


def vendor_facts(vendor: Vendor | str) -> VendorFacts:
    """The vendor's declared facts (importing its facts module, not the other vendors')."""
    facts = importlib.import_module(FACTS_MODULES[Vendor(vendor)]).FACTS
    assert isinstance(facts, VendorFacts)
    return facts


def vendor_credentials() -> dict[Vendor, tuple[tuple[str, ...], ...]]:
    """Which credentials each vendor takes (each tuple one complete alternative)."""
    return {vendor: vendor_facts(vendor).credentials for vendor in FACTS_MODULES}


__all__ = ["FACTS_MODULES", "vendor_credentials", "vendor_facts"]
