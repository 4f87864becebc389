"""pytest plugin (entry point ``pytest11``): the ``clerk_issuer`` and ``clerk_token`` fixtures.

Fixtures are only created when a test asks for them, so a test run that does not use them is
unchanged.
"""

from __future__ import annotations

import pytest

from .issuer import TestIssuer


@pytest.fixture
def clerk_issuer() -> TestIssuer:
    """A :class:`TestIssuer`; ``clerk_issuer.settings()`` trusts it without any network."""
    return TestIssuer()


@pytest.fixture
def clerk_token(clerk_issuer: TestIssuer) -> str:
    """A fresh session token for ``user_test`` from ``clerk_issuer``."""
    return clerk_issuer.token()
