from clerk_deps import ClerkClaims

claims = ClerkClaims.model_validate(
    {
        "sub": "user_1",
        "iat": 1,
        "exp": 2,
        "v": 2,
        "fea": "o:dashboard,o:teams",
        "o": {"id": "org_1", "slg": "acme", "rol": "admin", "per": "manage,read", "fpm": "3,2"},
    }
)
assert claims.org_role == "org:admin"
assert claims.org_permissions == [
    "org:dashboard:manage",
    "org:dashboard:read",
    "org:teams:read",
]
