"""pytest plugin (entry point ``pytest11``): the ``clerk_issuer`` and ``clerk_token`` fixtures.

The plugin defines two fixtures and nothing else: no hooks, no autouse fixtures, no options,
no environment changes, and no key is generated until a fixture is requested, so a test run
that does not use the fixtures is unchanged. This module imports only pytest (the issuer is
imported inside the fixture); Python does import the ``clerk_deps`` package around it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .issuer import TestIssuer

__all__ = ["clerk_issuer", "clerk_token"]


@pytest.fixture
def clerk_issuer() -> TestIssuer:
    """A :class:`~clerk_deps.testing.TestIssuer`: ``clerk_issuer.settings()`` trusts it without
    any network, ``clerk_issuer.token(...)`` mints session tokens it signs."""
    from .issuer import TestIssuer

    return TestIssuer()


@pytest.fixture
def clerk_token(clerk_issuer: TestIssuer) -> str:
    """A fresh session token for ``user_test``, signed by ``clerk_issuer``."""
    return clerk_issuer.token()
