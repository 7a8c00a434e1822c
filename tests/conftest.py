"""Shared pytest fixtures. Each part keeps its fixtures in its own block below."""

import pytest

# ---- Pulumi mocks recorder (components, program) -------------------------------------------------
from tests.pulumi_mocks import MockEngine, session_engine


@pytest.fixture
def pulumi_mocks() -> MockEngine:
    """The session's mock engine (set_mocks runs once per session), emptied around each test."""
    engine = session_engine()
    engine.reset()
    yield engine
    engine.reset()


# ---- end Pulumi mocks recorder -------------------------------------------------------------------
