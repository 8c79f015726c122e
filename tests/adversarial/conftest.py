"""The suite's fixtures live in advkit.py, beside the helpers the tests import from it.

quick_rubric is shared with the end-to-end tests: tests/conftest.py.
"""
from advkit import contained, loopback_server

__all__ = ["contained", "loopback_server"]
