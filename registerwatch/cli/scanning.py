"""Commands: scanning (see the module that registers them)."""

from __future__ import annotations
