from clerk_deps import ClerkClaims

claims = ClerkClaims(
    sub="user_1", iat=1, exp=2, org_id="org_1", org_role="admin", fea="o:dashboard", fva=(3, 5)
)
assert claims.has(role="org:admin")
assert claims.has(role="admin", feature="dashboard", reverification="strict")
assert claims.has(reverification={"level": "second_factor", "afterMinutes": 6})
assert not claims.has(role="admin", plan="pro")
assert not claims.has()
