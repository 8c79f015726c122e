"""The suite's fixtures live in advkit.py, beside the helpers the tests import from it."""
from advkit import contained, loopback_server, quick_rubric

__all__ = ["contained", "loopback_server", "quick_rubric"]
