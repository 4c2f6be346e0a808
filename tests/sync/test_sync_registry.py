"""build_adapter: one adapter per vendor, credentials read at use time, hints naming them."""

from __future__ import annotations

import base64
from datetime import time

import pytest
from sync_support import make_settings, school_table

from registerwatch.adapters.arbor import ArborAdapter
from registerwatch.adapters.base import RetryPolicy
from registerwatch.adapters.ctf import CtfAdapter
from registerwatch.adapters.go4schools import Go4SchoolsAdapter
from registerwatch.adapters.isams import IsamsAdapter
from registerwatch.adapters.registry import build_adapter, credential_hint
from registerwatch.errors import CredentialError

FAST = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001)


def settings_for(mis, **sync):
    return make_settings([school_table("oakfield", mis)], **sync)


ARBOR = {
    "vendor": "arbor",
    "base_url": "https://oakfield.uk.arbor.sc/rest-v2",
    "username_env": "OAKFIELD_ARBOR_USERNAME",
    "password_env": "OAKFIELD_ARBOR_PASSWORD",
}
ARBOR_ENV = {"OAKFIELD_ARBOR_USERNAME": "api-user", "OAKFIELD_ARBOR_PASSWORD": "s3cret"}


def test_arbor_gets_plain_credentials_the_hint_and_the_configured_timeout():
    settings = settings_for(ARBOR, timeout_seconds=12)
    school = settings.schools[0]

    adapter = build_adapter(school, settings.sync, ARBOR_ENV)

    assert isinstance(adapter, ArborAdapter) and adapter.school_id == "oakfield"
    assert adapter.client.credential_hint == "OAKFIELD_ARBOR_USERNAME / OAKFIELD_ARBOR_PASSWORD"
    assert adapter.client.timeout == (5.0, 12.0)
    assert adapter.client.base_url == "https://oakfield.uk.arbor.sc/rest-v2"
    # HTTP Basic from the plain strings read now (a SecretStr would encode as "**********").
    expected = "Basic " + base64.b64encode(b"api-user:s3cret").decode("ascii")
    assert adapter.client.auth_headers()["Authorization"] == expected
    adapter.close()


def test_a_short_timeout_bounds_the_connect_timeout_too():
    settings = settings_for(ARBOR, timeout_seconds=0.5)
    adapter = build_adapter(settings.schools[0], settings.sync, ARBOR_ENV)
    assert adapter.client.timeout == (0.5, 0.5)
    adapter.close()


def test_overrides_reach_the_constructor():
    settings = settings_for(ARBOR)
    naps: list[float] = []
    adapter = build_adapter(
        settings.schools[0],
        settings.sync,
        ARBOR_ENV,
        retry=FAST,
        sleep=naps.append,
        timeout=(1.0, 2.0),
    )
    assert adapter.client.retry is FAST and adapter.client.timeout == (1.0, 2.0)
    assert adapter.client.sleep == naps.append
    adapter.close()


def test_isams_takes_the_pm_cutoff_and_names_only_the_keys_configured(tmp_path):
    secret_file = tmp_path / "isams-secret"
    secret_file.write_text("from-a-file\n", encoding="utf-8")
    mis = {
        "vendor": "isams",
        "base_url": "https://isams.wenlock.example",
        "client_id_env": "WENLOCK_ISAMS_CLIENT_ID",
        "client_secret_file": str(secret_file),
    }
    settings = settings_for(mis, isams_pm_cutoff="12:30")
    school = settings.schools[0]

    adapter = build_adapter(school, settings.sync, {"WENLOCK_ISAMS_CLIENT_ID": "rw"})

    assert isinstance(adapter, IsamsAdapter)
    assert adapter.pm_cutoff == time(12, 30)
    assert adapter.client.credential_hint == (f"WENLOCK_ISAMS_CLIENT_ID / the file {secret_file}")
    adapter.close()


def test_go4schools_and_ctf(tmp_path):
    g4s = settings_for(
        {
            "vendor": "go4schools",
            "base_url": "https://api.go4schools.com/customer/v1",
            "api_key_env": "BROOK_G4S_KEY",
        }
    )
    adapter = build_adapter(g4s.schools[0], g4s.sync, {"BROOK_G4S_KEY": "k"}, retry=FAST)
    assert isinstance(adapter, Go4SchoolsAdapter) and adapter.client.retry is FAST
    assert adapter.client.credential_hint == "BROOK_G4S_KEY"
    adapter.close()

    ctf = settings_for({"vendor": "ctf", "path": str(tmp_path)})
    # HTTP-only overrides are dropped for a file adapter, so one set serves every school.
    adapter = build_adapter(ctf.schools[0], ctf.sync, {}, retry=FAST, sleep=print)
    assert isinstance(adapter, CtfAdapter)
    assert adapter.path == tmp_path and adapter.laestab == ctf.schools[0].laestab
    with pytest.raises(TypeError):
        build_adapter(ctf.schools[0], ctf.sync, {}, no_such_option=1)


def test_a_missing_credential_names_the_variable_without_any_secret():
    settings = settings_for(ARBOR)
    with pytest.raises(CredentialError) as caught:
        build_adapter(settings.schools[0], settings.sync, {"OAKFIELD_ARBOR_USERNAME": "api-user"})
    assert str(caught.value) == (
        "school 'oakfield': environment variable "
        "OAKFIELD_ARBOR_PASSWORD is not set (it should hold the arbor "
        "API password)"
    )
    assert "api-user" not in str(caught.value)


def test_credential_hint_for_each_vendor():
    assert credential_hint(settings_for(ARBOR).schools[0].mis) == (
        "OAKFIELD_ARBOR_USERNAME / OAKFIELD_ARBOR_PASSWORD"
    )
    isams = (
        settings_for({"vendor": "isams", "base_url": "https://i.example", "api_key_env": "W_KEY"})
        .schools[0]
        .mis
    )
    assert credential_hint(isams) == "W_KEY"
