"""Helpers shared by test folders (a package, so ``from support.x import ...`` names one place).

Importable because pytest's default "prepend" import mode puts ``tests/`` (the folder of the root
``conftest.py``, which has no ``__init__.py``) on ``sys.path``. The package name is unique in the
tree: unlike ``conftest``, which exists in several folders, ``support`` cannot resolve to the
wrong file.
"""
