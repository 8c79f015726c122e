"""Where a grading run's randomness comes from: the same notebook gets the same verdicts, and no student can
predict the inputs.

The probes' weights and inputs, the training check's initial weights and batch order, and the fresh held-out
set are all drawn from one seed per notebook: HMAC-SHA256 of the notebook's bytes under a secret the grader
keeps. Regrading the same notebook (same data, rubric and grader) repeats every draw, so a verdict never flips
at random; a student who changes one character gets unrelated draws, and without the secret nobody can compute
them. The secret lives beside the results store for `grader grade` (OUT/.grader-secret) and in the user's
grader folder for `grader check`; it is never written into a result, a report or an export. `--seed` bypasses
all of this for debugging.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_BYTES = 32
SECRET_FILE = ".grader-secret"
_SEED_BITS = 62


def user_secret_path() -> Path:
    """`$GRADER_SECRET_FILE`, else `$XDG_CONFIG_HOME/grader/secret`, else `~/.config/grader/secret`."""
    env = os.environ.get("GRADER_SECRET_FILE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "grader" / "secret"


def load_or_create_secret(path: Path) -> bytes:
    """The secret in `path`, made (readable by its owner only) the first time; a race keeps the first one written."""
    path = Path(path)
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:  # another grader made it meanwhile
        return _read(path)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(SECRET_BYTES) + "\n")
    return _read(path)


def _read(path: Path) -> bytes:
    text = path.read_text(encoding="ascii").strip()
    value = bytes.fromhex(text)  # a damaged file is an error to see, not a secret to replace silently
    if len(value) < 16:
        raise ValueError(f"{path}: the grading secret is too short")
    return value


def notebook_seed(secret: bytes, notebook: bytes) -> int:
    """The seed of every draw for this notebook under this secret."""
    digest = hmac.new(secret, hashlib.sha256(notebook).digest(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - _SEED_BITS)


def derived(seed: int, purpose: str) -> int:
    """An independent seed for one purpose (the held-out set, say), from the run's seed."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - _SEED_BITS)
