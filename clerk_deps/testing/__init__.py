"""Testing kit: mint real tokens, override authentication, emulate Clerk.

from clerk_deps.testing import TestIssuer

issuer = TestIssuer()
app.dependency_overrides[get_settings] = issuer.settings
client.get("/me", headers={"Authorization": f"Bearer {issuer.token('user_1')}"})
"""

from .issuer import TestIssuer, sign_jwt

__all__ = ["TestIssuer", "sign_jwt"]
