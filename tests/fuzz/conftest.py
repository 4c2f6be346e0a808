"""The fuzz suite's helpers live in ``fuzz_support`` (a conftest is imported under the one name
``conftest``, so test modules never import from it)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
