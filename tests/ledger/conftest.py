"""The ledger tests reuse the sync tests' fake adapter (``tests/sync/sync_support.py``) to run
real syncs; helpers live in ``ledger_support`` (a conftest is imported under the one name
``conftest``, so test modules never import from it)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sync"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_support import _no_nagle  # noqa: F401 - fixture, found by pytest here
