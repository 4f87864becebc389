"""The package surface: every public name resolves, and importing stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import clerk_deps
import clerk_deps.testing

CONTRACT_NAMES = {
    "ClerkSettings", "get_settings", "ClerkClaims", "verify_token", "require_clerk_user",
    "CurrentUserDep", "optional_clerk_user", "OptionalUserDep", "require_org_role",
    "require_org_permission", "require_reverification", "require_feature", "require_plan",
    "require_clerk_user_with_email", "CurrentUserWithEmailDep", "warm_up", "clerk_lifespan",
    "ClerkAuthError", "ErrorReason", "clerk_error_handler",
}  # fmt: skip


@pytest.mark.parametrize("package", [clerk_deps, clerk_deps.testing])
def test_every_public_name_resolves(package: object) -> None:
    names = package.__all__  # type: ignore[attr-defined]
    assert set(names) == set(package._EXPORTS)  # type: ignore[attr-defined]
    for name in names:
        assert getattr(package, name) is not None
        assert name in dir(package)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        package.not_a_name  # type: ignore[attr-defined]  # noqa: B018


def test_contract_names_are_public() -> None:
    assert set(clerk_deps.__all__) >= CONTRACT_NAMES
    from clerk_deps import CurrentUserDep, require_clerk_user  # the import style users write

    assert CurrentUserDep.__metadata__[0].dependency is require_clerk_user


def test_loading_the_pytest_plugin_does_not_import_fastapi() -> None:
    code = (
        "import sys, clerk_deps.testing.plugin; "
        "print(sorted(m for m in ('fastapi', 'clerk_deps.tokens', 'cryptography') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
