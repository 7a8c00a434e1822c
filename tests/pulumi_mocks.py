"""Pulumi mocks recorder for the tests: one engine per session, installed with Pulumi's `set_mocks`.

The engine itself lives in `components/check/engine.py` because `python -m components.check` runs
the program under the same mocks. This module adds the session wiring: the project name comes from
`Pulumi.yaml`, the stack is `dev`, and `set_mocks` is called once (Pulumi's mocks are global).
"""

from functools import cache
from pathlib import Path

import yaml

from components.check.engine import (
    DEFAULT_APP_ID,
    UNKNOWN,
    MockEngine,
    Registration,
    is_secret,
    plain_strings,
    secret,
    unwrap,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


@cache
def project_name() -> str:
    return yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())["name"]


@cache
def session_engine() -> MockEngine:
    """The one engine of this test session, installed on first use."""
    return MockEngine(project_name(), stack="dev", preview=False).install()


__all__ = [
    "DEFAULT_APP_ID",
    "REPO_ROOT",
    "UNKNOWN",
    "MockEngine",
    "Registration",
    "is_secret",
    "plain_strings",
    "project_name",
    "secret",
    "session_engine",
    "unwrap",
]
