"""The grading secret and the per-notebook seed (grader/seeds.py): same notebook, same draws; unpredictable
without the secret; the secret file private and never silently replaced."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest

from grader.seeds import derived, load_or_create_secret, notebook_seed


def test_the_secret_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "secret"
    first = load_or_create_secret(path)
    assert len(first) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first


def test_a_damaged_secret_is_an_error_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("not hex\n")
    with pytest.raises(ValueError):
        load_or_create_secret(path)
    assert path.read_text() == "not hex\n"


def test_same_notebook_same_seed_other_bytes_or_secret_other_seed() -> None:
    secret, other = b"s" * 32, b"t" * 32
    nb = b'{"cells": []}'
    assert notebook_seed(secret, nb) == notebook_seed(secret, nb)
    assert notebook_seed(secret, nb) != notebook_seed(secret, nb + b" ")
    assert notebook_seed(secret, nb) != notebook_seed(other, nb)
    assert 0 <= notebook_seed(secret, nb) < 2**62


def test_derived_seeds_are_stable_and_independent() -> None:
    assert derived(7, "heldout") == derived(7, "heldout") != derived(7, "other") != derived(8, "heldout")
