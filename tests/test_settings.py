"""ClerkSettings: sources, precedence, aliases and validation messages (contract section 2)."""

from __future__ import annotations

import base64
import importlib
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from clerk_deps import ClerkAuthError, ClerkSettings, ErrorReason, get_settings
from clerk_deps.settings import issuer_from_publishable_key
from clerk_deps.testing import TestIssuer

ISSUER = TestIssuer()
PK = "pk_test_" + base64.b64encode(b"clean-fox-12.clerk.accounts.dev$").decode().rstrip("=")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def escaped(pem: str) -> str:
    return pem.strip().replace("\n", "\\n")


def messages(error: pytest.ExceptionInfo[ValidationError]) -> str:
    return " | ".join(e["msg"] for e in error.value.errors())


# -- sources and precedence ------------------------------------------------------------


def test_defaults(workdir: Path) -> None:
    settings = ClerkSettings()
    assert settings.issuer is None and settings.jwks_url is None and settings.jwt_key is None
    assert settings.api_url == "https://api.clerk.com"
    assert settings.audience is None and settings.authorized_parties == []
    assert settings.leeway == 5.0 and settings.verify_iat is True
    assert settings.accept_pending_sessions is False and settings.accept_jwt_templates is False
    assert settings.session_cookie == "__session"
    assert (settings.jwks_cache_ttl, settings.jwks_refresh_cooldown, settings.http_timeout) == (
        300,
        10,
        5,
    )
    assert settings.token_cache_size == 10_000
    assert settings.key_source_name is None


def test_environment(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_ISSUER", "https://a.clerk.accounts.dev/")
    monkeypatch.setenv("clerk_leeway", "2.5")  # case-insensitive
    monkeypatch.setenv("CLERK_VERIFY_IAT", "false")
    settings = ClerkSettings()
    assert settings.issuer == "https://a.clerk.accounts.dev"
    assert settings.jwks_url == "https://a.clerk.accounts.dev/.well-known/jwks.json"
    assert settings.leeway == 2.5 and settings.verify_iat is False
    assert settings.key_source_name == "jwks_url"


def test_dotenv_precedence(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / ".env").write_text(
        "CLERK_ISSUER=https://from-env-file.example\nCLERK_LEEWAY=1\nCLERK_HTTP_TIMEOUT=7\n"
    )
    (workdir / ".env.local").write_text(
        "CLERK_ISSUER=https://from-env-local.example\nCLERK_LEEWAY=2\n"
    )
    monkeypatch.setenv("CLERK_LEEWAY", "3")
    settings = ClerkSettings()
    assert settings.issuer == "https://from-env-local.example"  # .env.local beats .env
    assert settings.leeway == 3  # the real environment beats both files
    assert settings.http_timeout == 7  # .env still fills what the others leave
    assert ClerkSettings(leeway=4).leeway == 4  # keywords beat everything


def test_unrelated_variables_are_ignored(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / ".env").write_text(
        "DATABASE_URL=postgres://x\nCLERK_SIGN_IN_URL=/sign-in\nNEXT_PUBLIC_CLERK_PUBLISHABLE_KEY=pk\n"
        "CLERK_ISSUER=https://a.example\n"
    )
    monkeypatch.setenv("CLERK_AFTER_SIGN_IN_URL", "/home")
    assert ClerkSettings().issuer == "https://a.example"


def test_unknown_keyword_is_an_error(workdir: Path) -> None:
    with pytest.raises(ValidationError) as error:
        ClerkSettings(isuer="https://typo.example")  # type: ignore[call-arg]
    assert error.value.errors()[0]["type"] == "extra_forbidden"
    assert "isuer" in str(error.value)


@pytest.mark.parametrize("name", ["CLERK_JWT_KEY", "CLERK_PEM_PUBLIC_KEY"])
def test_jwt_key_variable_names_and_escaped_newlines(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    (workdir / ".env.local").write_text(f'{name}="{escaped(ISSUER.public_pem)}"\n')
    settings = ClerkSettings()
    assert settings.jwt_key is not None
    assert settings.jwt_key.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert "\\n" not in settings.jwt_key
    assert settings.key_source_name == "jwt_key"


@pytest.mark.parametrize("name", ["CLERK_JWT_AUDIENCE", "CLERK_AUDIENCE"])
def test_audience_variable_names(monkeypatch: pytest.MonkeyPatch, workdir: Path, name: str) -> None:
    monkeypatch.setenv(name, "my-api")
    assert ClerkSettings().audience == "my-api"
    monkeypatch.setenv(name, '["a", "b"]')
    assert ClerkSettings().audiences == ("a", "b")
    monkeypatch.setenv(name, "")
    assert ClerkSettings().audience is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://a.example,https://b.example/", ["https://a.example", "https://b.example"]),
        (" https://a.example , ", ["https://a.example"]),
        (
            '["https://a.example", "http://localhost:3000"]',
            ["https://a.example", "http://localhost:3000"],
        ),
        ("", []),
    ],
)
def test_authorized_parties_csv_or_json(
    monkeypatch: pytest.MonkeyPatch, workdir: Path, raw: str, expected: list[str]
) -> None:
    monkeypatch.setenv("CLERK_AUTHORIZED_PARTIES", raw)
    assert ClerkSettings().authorized_parties == expected


def test_publishable_key_alone_is_a_complete_configuration(
    monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> None:
    monkeypatch.setenv("CLERK_PUBLISHABLE_KEY", PK)
    settings = ClerkSettings()
    assert settings.issuer == "https://clean-fox-12.clerk.accounts.dev"
    assert settings.jwks_url == "https://clean-fox-12.clerk.accounts.dev/.well-known/jwks.json"
    # An explicit issuer wins over the derived one.
    assert ClerkSettings(issuer="https://other.example").issuer == "https://other.example"


def test_issuer_from_publishable_key_live() -> None:
    live = "pk_live_" + base64.b64encode(b"clerk.example.com$").decode()
    assert issuer_from_publishable_key(live) == "https://clerk.example.com"


def test_key_source_order(workdir: Path) -> None:
    both = ClerkSettings(
        jwt_key=ISSUER.public_pem, issuer="https://a.example", secret_key="sk_test_x"
    )
    assert both.key_source_name == "jwt_key"
    assert ClerkSettings(secret_key="sk_test_x").key_source_name == "secret_key"
    assert ClerkSettings(jwks_url="https://k.example/jwks").key_source_name == "jwks_url"


@pytest.mark.parametrize(
    "url",
    ["http://localhost:3000", "http://127.0.0.1:8080", "http://[::1]:9000", "https://x.example"],
)
def test_issuer_schemes_allowed(workdir: Path, url: str) -> None:
    assert ClerkSettings(issuer=url).issuer == url


# -- validation errors name the variable -------------------------------------------------


@pytest.mark.parametrize(
    ("values", "variable", "fragment"),
    [
        ({"issuer": "http://a.clerk.accounts.dev"}, "CLERK_ISSUER", "https://"),
        ({"issuer": "a.clerk.accounts.dev"}, "CLERK_ISSUER", "absolute https://"),
        ({"jwks_url": "ftp://x"}, "CLERK_JWKS_URL", "https://"),
        ({"api_url": "http://api.clerk.com"}, "CLERK_API_URL", "https://"),
        ({"publishable_key": "pk_prod_abc"}, "CLERK_PUBLISHABLE_KEY", "pk_test_"),
        ({"publishable_key": "pk_test_!!!"}, "CLERK_PUBLISHABLE_KEY", "pk_test_"),
        (
            {"publishable_key": "pk_test_" + base64.b64encode(b"a/b$").decode()},
            "CLERK_PUBLISHABLE_KEY",
            "pk_",
        ),
        ({"jwt_key": "not a pem"}, "CLERK_JWT_KEY", "PEM public key"),
        ({"jwt_key": "sk_test_123"}, "CLERK_JWT_KEY", "CLERK_SECRET_KEY"),
        ({"authorized_parties": "[not json"}, "CLERK_AUTHORIZED_PARTIES", "JSON"),
        ({"authorized_parties": "[1, 2]"}, "CLERK_AUTHORIZED_PARTIES", "strings"),
        ({"audience": "[1]"}, "CLERK_JWT_AUDIENCE", "strings"),
    ],
)
def test_validation_messages_name_the_variable(
    workdir: Path, values: dict[str, str], variable: str, fragment: str
) -> None:
    with pytest.raises(ValidationError) as error:
        ClerkSettings(**values)  # type: ignore[arg-type]
    text = str(error.value)
    assert variable.split("_", 1)[1].lower() in text.lower()
    assert fragment in text


@pytest.mark.parametrize("value", [-1, 61, "lots"])
def test_leeway_bounded(workdir: Path, value: object) -> None:
    with pytest.raises(ValidationError):
        ClerkSettings(leeway=value)  # type: ignore[arg-type]


def test_ec_key_rejected(workdir: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(ValidationError, match="RSA"):
        ClerkSettings(jwt_key=pem)


def test_errors_never_echo_the_input(workdir: Path) -> None:
    secretish = "sk_live_do_not_print_me"
    with pytest.raises(ValidationError) as error:
        ClerkSettings(jwt_key=secretish)
    assert secretish not in str(error.value)
    assert secretish not in repr(error.value)


def test_secret_key_hidden_from_repr(workdir: Path) -> None:
    settings = ClerkSettings(secret_key="sk_test_supersecret", jwt_key=ISSUER.public_pem)
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert "sk_test_supersecret" not in text
    assert "BEGIN PUBLIC KEY" not in repr(settings)


# -- get_settings ------------------------------------------------------------------------


def test_get_settings_is_cached_and_lazy(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_ISSUER", "https://first.example")
    first = get_settings()
    monkeypatch.setenv("CLERK_ISSUER", "https://second.example")
    assert get_settings() is first
    get_settings.cache_clear()
    assert get_settings().issuer == "https://second.example"


def test_get_settings_reports_invalid_configuration(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLERK_ISSUER", "http://insecure.example")
    monkeypatch.setenv("CLERK_SECRET_KEY", "sk_test_hidden")
    with pytest.raises(ClerkAuthError) as error:
        get_settings()
    assert error.value.reason is ErrorReason.AUTH_NOT_CONFIGURED
    assert error.value.status_code == 500
    assert "CLERK_ISSUER" in error.value.message
    assert "sk_test_hidden" not in error.value.message


def test_app_imported_before_dotenv_exists(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The import-order trap: the app module is imported, *then* the dotenv file appears."""
    (workdir / "late_app.py").write_text(
        textwrap.dedent(
            """
            from fastapi import FastAPI
            from clerk_deps import CurrentUserDep

            app = FastAPI()

            @app.get("/me")
            async def me(user: CurrentUserDep):
                return {"user_id": user.sub}
            """
        )
    )
    monkeypatch.syspath_prepend(str(workdir))
    module = importlib.import_module("late_app")
    try:
        assert not (workdir / ".env.local").exists()
        (workdir / ".env.local").write_text(
            f'CLERK_ISSUER={ISSUER.issuer}\nCLERK_JWT_KEY="{escaped(ISSUER.public_pem)}"\n'
        )
        client = TestClient(module.app)
        response = client.get(
            "/me", headers={"Authorization": f"Bearer {ISSUER.token('user_late')}"}
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"user_id": "user_late"}
    finally:
        sys.modules.pop("late_app", None)


def test_environment_errors_name_the_variable_once(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLERK_LEEWAY", "100")
    with pytest.raises(ClerkAuthError) as error:
        get_settings()
    assert "CLERK_LEEWAY:" in error.value.message
    assert "CLERK_CLERK_" not in error.value.message


# -- immutability ----------------------------------------------------------------------


def test_settings_are_immutable_after_construction(workdir: Path) -> None:
    settings = ClerkSettings(
        publishable_key=PK,
        authorized_parties="https://a.example/,https://b.example",
        audience=["x", "y"],
    )
    # the derived values are still written while the object is built
    assert settings.issuer == "https://clean-fox-12.clerk.accounts.dev"
    assert settings.jwks_url == "https://clean-fox-12.clerk.accounts.dev/.well-known/jwks.json"
    with pytest.raises(ValidationError, match="frozen"):
        settings.issuer = "https://other.example"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        settings.leeway = 0  # type: ignore[misc]
    for mutate in (
        lambda: settings.authorized_parties.append("https://evil.example"),
        lambda: settings.authorized_parties.__setitem__(0, "https://evil.example"),
        lambda: settings.authorized_parties.clear(),
        lambda: settings.authorized_parties.pop(),
        lambda: ClerkSettings().authorized_parties.append("https://evil.example"),
    ):
        with pytest.raises(TypeError, match="immutable"):
            mutate()
    assert isinstance(settings.audience, list)
    with pytest.raises(TypeError, match="immutable"):
        settings.audience.append("z")
    assert settings.authorized_parties == ["https://a.example", "https://b.example"]
    assert settings.audience == ["x", "y"]


def test_immutable_settings_copy_pickle_and_hash(workdir: Path) -> None:
    import copy
    import pickle

    settings = ClerkSettings(issuer="https://a.example", authorized_parties=["https://a.example"])
    assert pickle.loads(pickle.dumps(settings)) == settings
    assert copy.deepcopy(settings) == settings
    assert hash(copy.deepcopy(settings)) == hash(settings)
    assert settings.model_dump()["authorized_parties"] == ["https://a.example"]
    assert {settings: 1}[
        ClerkSettings(issuer="https://a.example", authorized_parties=["https://a.example"])
    ] == 1
