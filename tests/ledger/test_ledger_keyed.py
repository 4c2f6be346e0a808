"""Issue 14 item 5a: the chain keyed with an HMAC whose key lives outside the store (a file or
an environment variable named in [ledger]); entries record the key id, so keys rotate; without
a key the chain stays plain SHA-256 and `ledger verify` says so."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from ledger_support import KEY_1, KEY_2, cli, entries, key_file, ledger_toml, rewrite_from
from sync_support import (
    AS_OF,
    NOW,
    FakeMis,
    fake_factory,
    fake_mis,
    marks_for,
    pupil,
    school_days,
    school_table,
)

from registerwatch.config import parse_config
from registerwatch.errors import ConfigError, CredentialError
from registerwatch.store import GENESIS_HASH, Store
from registerwatch.store.ledger import entry_hash
from registerwatch.store.ledger_keys import LedgerKeys
from registerwatch.sync import sync_all

K1 = LedgerKeys("k1", {"k1": KEY_1.encode()})


@pytest.fixture
def url(tmp_path):
    url = f"sqlite:///{tmp_path / 'store' / 'store.db'}"
    (tmp_path / "store").mkdir()
    Store.open(url).close()
    return url


def test_keyed_entries_carry_their_key_id_and_verify_only_with_the_key(url):
    with Store(url) as store:
        store.use_ledger(K1)
        records = store.append_ledger(entries(5))
        assert [r.key_id for r in records] == ["k1"] * 5
        first = records[0]
        plain = entry_hash(first, 1, GENESIS_HASH)
        assert first.hash == entry_hash(first, 1, GENESIS_HASH, KEY_1.encode()) != plain
        assert len(first.hash) == 64  # fits the hash column as the plain chain's does
        check = store.check_ledger()
        assert check.ok and check.keyed and check.key_ids == ("k1",) and check.unkeyed == 0
    with Store(url) as store:  # the same store opened without the key
        assert store.ledger() == records
        check = store.check_ledger()
        assert not check.ok and check.broken_seq == 1
        assert "key 'k1', which is not configured" in (check.reason or "")


def test_hmac_is_keyed_sha256_of_the_plain_chains_text(url):
    with Store(url) as store:
        store.use_ledger(K1)
        (record,) = store.append_ledger(entries(1))
    # The keyed hash is RFC 2104 HMAC-SHA256 (as the standard library computes it) of the very
    # canonical text the plain chain hashes (tests/store pins that text).
    from registerwatch.store.ledger import canonical_json, instant_text

    document = {
        "seq": 1,
        "school_id": record.school_id,
        "pupil_id": record.pupil_id,
        "date": record.date.isoformat(),
        "session": str(record.session),
        "kind": str(record.kind),
        "original_code": record.original_code,
        "new_code": record.new_code,
        "observed_at": instant_text(record.observed_at),
        "payload": {},
        "prev_hash": GENESIS_HASH,
    }
    text = canonical_json(document).encode()
    assert record.hash == hmac.new(KEY_1.encode(), text, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("forger", ["plain sha256", "a guessed key"])
def test_rewriting_an_entry_and_recomputing_later_hashes_without_the_key_fails(url, forger):
    with Store(url) as store:
        store.use_ledger(K1)
        store.append_ledger(entries(20))
    guessed = b"not-the-key-" * 4 if forger == "a guessed key" else None
    rewrite_from(url, 7, "O", key=guessed, key_id="k1" if guessed else None)
    with Store(url) as store:
        assert store.ledger_entry(7).new_code == "O"
        store.use_ledger(K1)
        check = store.check_ledger()
    assert not check.ok and check.broken_seq == 7 and check.entries == 6
    if guessed is None:
        assert "no key but entry 1 before it was keyed" in (check.reason or "")
    else:
        assert "under key 'k1': the entry was altered" in (check.reason or "")


def test_a_whole_chain_rewritten_without_a_key_is_caught_by_keyed_from_seq(url):
    with Store(url) as store:
        store.use_ledger(K1)
        store.append_ledger(entries(10))
    rewrite_from(url, 1, "O")  # every entry rewritten, plain: no keyed entry is left to compare
    with Store(url) as store:
        store.use_ledger(K1)
        # The limit, stated in docs/security.md: with no keyed entry left and no tip kept, a
        # fully unkeyed rewrite walks like a chain from before keying...
        assert store.check_ledger().ok
        assert store.check_ledger().unkeyed == 10
        # ...which [ledger] keyed_from_seq closes.
        store.use_ledger(LedgerKeys("k1", {"k1": KEY_1.encode()}, keyed_from_seq=1))
        check = store.check_ledger()
    assert not check.ok and check.broken_seq == 1
    assert "keyed_from_seq = 1" in (check.reason or "")


def test_key_rotation_new_key_signs_new_entries_old_key_still_verifies(url, tmp_path):
    with Store(url) as store:
        store.use_ledger(K1)
        store.append_ledger(entries(5))
        rotated = LedgerKeys("k2", {"k1": KEY_1.encode(), "k2": KEY_2.encode()})
        store.use_ledger(rotated)
        later = store.append_ledger(entries(5, start=5))
        assert [r.key_id for r in later] == ["k2"] * 5
        assert later[0].prev_hash == store.ledger_entry(5).hash  # one chain across the rotation
        check = store.check_ledger()
        assert check.ok and check.key_ids == ("k1", "k2")
        # Dropping the retired key too early: its entries can no longer be checked.
        store.use_ledger(LedgerKeys("k2", {"k2": KEY_2.encode()}))
        check = store.check_ledger()
        assert not check.ok and check.broken_seq == 1 and "'k1'" in (check.reason or "")

    # The same through the config and the command line: key_id/key_file + retired_keys.
    keys = tmp_path / "keys"
    config = tmp_path / "registerwatch.toml"
    config.write_text(
        f'[store]\nurl = "{url}"\n'
        + _one_school_toml()
        + ledger_toml(
            "k2", key_file(keys, "k2.key", KEY_2), retired=[("k1", key_file(keys, "k1.key", KEY_1))]
        ),
        encoding="utf-8",
    )
    verified = cli("ledger", "verify", "--config", str(config))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "HMAC-keyed chain: entries signed with keys 'k1', 'k2'" in verified.stdout
    assert KEY_1 not in verified.stdout + verified.stderr
    config.write_text(
        f'[store]\nurl = "{url}"\n' + _one_school_toml() + ledger_toml("k2", keys / "k2.key"),
        encoding="utf-8",
    )
    dropped = cli("ledger", "verify", "--config", str(config))
    assert dropped.returncode == 1 and "ledger broken at entry 1" in dropped.stdout


def test_verify_with_only_the_store_says_no_keys_were_loaded(url):
    with Store(url) as store:
        store.use_ledger(K1)
        store.append_ledger(entries(2))
    result = cli("ledger", "verify", "--store", url)
    assert result.returncode == 1
    assert "which is not configured" in result.stdout
    assert "only --store was given, so no [ledger] keys were loaded" in result.stdout


def test_without_a_key_the_chain_is_plain_and_verify_says_so(url):
    with Store(url) as store:
        records = store.append_ledger(entries(3))
    assert [r.key_id for r in records] == [None] * 3
    assert records[0].hash == entry_hash(records[0], 1, GENESIS_HASH)
    result = cli("ledger", "verify", "--store", url)
    assert result.returncode == 0
    assert "no ledger key configured: the chain is plain SHA-256" in result.stdout
    as_json = cli("ledger", "verify", "--store", url, "--format", "json")
    assert '"keyed": false' in as_json.stdout and '"unkeyed_entries": 3' in as_json.stdout


def test_sync_signs_with_the_key_named_in_the_config(tmp_path):
    settings = parse_config(
        {
            "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
            "ledger": {"key_id": "2027-01", "key_env": "RW_LEDGER_KEY"},
            "schools": [school_table("oakfield", fake_mis("oakfield"))],
        }
    )
    school = settings.schools[0]
    pupils = [pupil("oakfield", n) for n in range(1, 4)]
    days = school_days(school.to_calendar(), AS_OF.replace(day=1), AS_OF)
    mis = FakeMis("oakfield", pupils, marks_for(pupils, days))
    env = {"OAKFIELD_G4S_KEY": "k", "RW_LEDGER_KEY": KEY_1}
    with Store.open(settings.store.url) as store:
        summary = sync_all(
            settings,
            store,
            as_of=AS_OF,
            environ=env,
            adapter_factory=fake_factory({"oakfield": mis}),
            clock=lambda: NOW,
        )
        assert summary.ok
        records = store.ledger()
        assert records and {r.key_id for r in records} == {"2027-01"}
        assert store.check_ledger().ok
    with pytest.raises(CredentialError, match="RW_LEDGER_KEY is not set"):
        settings.ledger.keys({})


def test_key_config_errors_name_the_key_never_its_value(tmp_path):
    def ledger(table):
        return parse_config(
            {
                "store": {"url": "sqlite://"},
                "ledger": table,
                "schools": [school_table("oakfield", fake_mis("oakfield"))],
            }
        ).ledger

    with pytest.raises(ConfigError, match="key_id needs key_env or key_file"):
        ledger({"key_id": "k1"})
    with pytest.raises(ConfigError, match="need a key_id"):
        ledger({"key_env": "RW_KEY"})
    with pytest.raises(ConfigError, match="must be a short name"):
        ledger({"key_id": "a key with spaces", "key_env": "RW_KEY"})
    with pytest.raises(ConfigError, match="shorter than 32 characters"):
        ledger({"key_id": "k1", "key_env": "RW_KEY"}).keys({"RW_KEY": "short-secret-1234"})
    two_lines = tmp_path / "two.key"
    two_lines.write_text(KEY_1 + "\n" + KEY_2 + "\n", encoding="utf-8")
    with pytest.raises(CredentialError) as raised:
        ledger({"key_id": "k1", "key_file": str(two_lines)}).keys({})
    assert "more than one line" in str(raised.value)
    assert KEY_1 not in str(raised.value) and KEY_2 not in str(raised.value)
    with pytest.raises(ConfigError, match="each key_id may appear once"):
        ledger(
            {"key_id": "k1", "key_env": "A_KEY", "retired_keys": [{"key_id": "k1", "key_env": "B"}]}
        )


def _one_school_toml() -> str:
    from support.config_writer import config_text

    text = config_text("sqlite://", [school_table("oakfield", fake_mis("oakfield"))])
    return text.split("\n", 2)[2]  # without its own [store] table
