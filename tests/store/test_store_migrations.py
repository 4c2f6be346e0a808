from __future__ import annotations

import shutil
import stat
from importlib.resources import files
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import registerwatch.store.migrate as migrate
from registerwatch.errors import StoreError
from registerwatch.schema import School
from registerwatch.store import Store, current_revision, head_revision, metadata, upgrade

EXPECTED_TABLES = {
    "schools",
    "pupils",
    "calendars",
    "registers",
    "marks",
    "amendments",
    "ledger",
    "quarantine",
    "bookmarks",
    "notifications",
    "findings",
    "outbox",
    "runs",
    "sync_status",
    "finding_events",
    # the web app (issue 13)
    "users",
    "user_schools",
    "audit",
    "login_failures",
    "pupil_summary",
    "scan_state",
    "rule_state",
}

# A revision after the packaged head, standing in for a later registerwatch.
PROBE_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("probe", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("probe")
"""
HEAD = "0008"


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_metadata_declares_the_expected_tables():
    assert set(metadata.tables) == EXPECTED_TABLES


def test_upgrade_from_empty_creates_every_table(store_url):
    assert current_revision(store_url) is None

    assert upgrade(store_url) == head_revision() == HEAD

    assert current_revision(store_url) == HEAD
    assert _tables(store_url) == EXPECTED_TABLES | {"alembic_version"}


def test_upgrade_twice_leaves_the_store_as_it_was(store_url):
    upgrade(store_url)
    with Store(store_url) as store:
        store.upsert_school(School(id="wenlock", name="Wenlock Academy"))

    assert upgrade(store_url) == HEAD

    with Store(store_url) as store:
        assert [s.id for s in store.schools()] == ["wenlock"]


def test_migration_matches_tables_py(store_url):
    upgrade(store_url)
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_open_without_create_refuses_an_empty_database(store_url):
    with pytest.raises(StoreError, match="registerwatch db upgrade"):
        Store(store_url)


def test_open_creates_an_empty_database(store_url):
    with Store.open(store_url) as store:
        assert store.schools() == []
    assert current_revision(store_url) == head_revision()


@pytest.fixture
def newer_migrations(tmp_path, monkeypatch) -> str:
    """The packaged migrations plus a revision after them, standing in for a later
    registerwatch; returns the new revision."""
    location = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, location, ignore=shutil.ignore_patterns("__pycache__"))
    probe = PROBE_REVISION.format(revision="9000", down_revision=HEAD)
    (location / "versions" / "9000_probe.py").write_text(probe)
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", location)
    return "9000"


def test_store_at_an_older_revision_says_to_upgrade(store_url, newer_migrations):
    assert upgrade(store_url, HEAD) == HEAD

    with pytest.raises(StoreError) as err:
        Store(store_url)
    assert f"'{HEAD}'" in str(err.value)
    assert f"'{newer_migrations}'" in str(err.value)
    assert "run `registerwatch db upgrade`" in str(err.value)
    # create=True initialises only an empty store; it never upgrades one behind your back.
    with pytest.raises(StoreError, match="registerwatch db upgrade"):
        Store.open(store_url)

    assert upgrade(store_url) == newer_migrations
    assert "probe" in _tables(store_url)
    with Store(store_url) as store:
        assert store.schools() == []


def _ledger_indexes(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {ix["name"] for ix in sa.inspect(engine).get_indexes("ledger")}
    finally:
        engine.dispose()


def test_store_at_0001_says_to_upgrade_and_upgrade_adds_the_ledger_kind_index(store_url):
    assert upgrade(store_url, "0001") == "0001"
    assert "ix_ledger_school_id_kind" not in _ledger_indexes(store_url)

    with pytest.raises(StoreError) as err:
        Store(store_url)
    assert "'0001'" in str(err.value) and f"'{HEAD}'" in str(err.value)
    assert "run `registerwatch db upgrade`" in str(err.value)

    assert upgrade(store_url) == HEAD
    assert "ix_ledger_school_id_kind" in _ledger_indexes(store_url)
    with Store(store_url) as store:
        assert store.ledger(kinds=["observed_change"]) == []


def test_0002_downgrades_to_0001_and_back(store_url):
    upgrade(store_url)
    cfg = migrate.alembic_config(store_url)

    command.downgrade(cfg, "0001")

    assert current_revision(store_url) == "0001"
    # (PostgreSQL also lists the index behind uq_ledger_hash; SQLite does not.)
    assert _ledger_indexes(store_url) - {"uq_ledger_hash"} == {
        "ix_ledger_school_id_pupil_id_date",
    }
    assert upgrade(store_url) == HEAD
    assert _ledger_indexes(store_url) - {"uq_ledger_hash"} == {
        "ix_ledger_school_id_pupil_id_date",
        "ix_ledger_school_id_kind",
    }


def test_store_from_a_newer_registerwatch_is_refused(store_url):
    upgrade(store_url)
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()

    with pytest.raises(StoreError, match="newer registerwatch"):
        Store(store_url)
    with pytest.raises(StoreError, match="newer registerwatch"):
        upgrade(store_url)


def test_migrations_ship_inside_the_package():
    folder = files("registerwatch.store") / "migrations"
    for name in (
        "env.py",
        "script.py.mako",
        "versions/0001_initial.py",
        "versions/0002_ledger_kind_index.py",
    ):
        assert (folder / name).is_file(), name
    assert Path(str(folder)) == migrate.MIGRATIONS_DIR


def test_new_sqlite_store_is_private_to_its_owner(tmp_path):
    path = tmp_path / "nested" / "folder" / "registerwatch.db"
    with Store.open(f"sqlite:///{path}"):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_missing_sqlite_file_is_not_created_without_create(tmp_path):
    path = tmp_path / "absent.db"
    with pytest.raises(StoreError, match="no store at"):
        Store(f"sqlite:///{path}")
    assert not path.exists()


def test_in_memory_store_is_initialised_and_usable():
    with Store.open("sqlite://") as store:
        store.upsert_school(School(id="wenlock", name="Wenlock Academy"))
        assert [s.name for s in store.schools()] == ["Wenlock Academy"]


@pytest.mark.parametrize("url", ["mysql://root@localhost/rw", "not a url"])
def test_unsupported_urls_are_refused(url):
    with pytest.raises(StoreError):
        Store(url)


def test_password_is_masked_in_messages():
    with pytest.raises(StoreError) as err:
        Store("mysql://rw:s3cret@localhost/rw")
    assert "s3cret" not in str(err.value)


def test_0003_adds_sync_status_and_finding_history_and_downgrades(store_url):
    upgrade(store_url)
    cfg = migrate.alembic_config(store_url)
    command.downgrade(cfg, "0002")
    assert current_revision(store_url) == "0002"
    engine = sa.create_engine(store_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        assert {"sync_status", "finding_events"}.isdisjoint(tables)
        columns = {c["name"] for c in sa.inspect(engine).get_columns("findings")}
        assert "resolution" not in columns
    finally:
        engine.dispose()
    assert upgrade(store_url) == HEAD
    with Store(store_url) as store:
        assert store.sync_status("nowhere") is None
        assert store.finding_history("0" * 64) == []
