"""Shared fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def small_synthetic_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic dataset (4 train + 2 test clips per class), written once per session. Do not modify it."""
    from grader.data.synth import SynthParams, generate

    root = tmp_path_factory.mktemp("small-synth") / "data"
    generate(root, seed=0, params=SynthParams(train_per_class=4, test_per_class=2))
    return root


@pytest.fixture(scope="session")
def default_synthetic_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default synthetic dataset, `generate(dir, seed=0)`, written once per session. Do not modify it."""
    from grader.data.synth import generate

    root = tmp_path_factory.mktemp("default-synth") / "data"
    generate(root, seed=0)
    return root
