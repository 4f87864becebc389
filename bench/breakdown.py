"""Where the time of one ``verify_token`` call goes: each step timed on its own.

    python bench/breakdown.py              # per-step microseconds, cold and warm
    python bench/breakdown.py --cprofile   # plus cProfile's view of both paths

Not part of ``make bench``: it reaches into private helpers of ``clerk_deps.tokens`` (steps
whose helper was renamed are shown as n/a), and per-step timings do not add up exactly to
the whole (each is measured in its own loop, with warm CPU caches). cProfile adds a large
per-call overhead to pure-Python code, so its percentages overstate the Python steps; the
per-step table is the fairer view, cProfile the more complete one.
"""

from __future__ import annotations

import argparse
import binascii
import cProfile
import json
import pstats
import re
import time
import timeit
from collections.abc import Callable
from typing import Any

import latency
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from latency import Measurement, clear_token_cache, drive, measure_round_robin, signature_parts
from minting import mint_tokens

from clerk_deps import ClerkClaims, verify_token
from clerk_deps import tokens as T
from clerk_deps.keys import key_source_for
from clerk_deps.testing import TestIssuer
from clerk_deps.token_cache import TokenCache, token_cache_for


def _best_us(function: Callable[[], Any], number: int, repeat: int = 7) -> float:
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number * 1e6


def _step(
    name: str, make: Callable[[], Callable[[], Any]], number: int
) -> tuple[str, float | None]:
    try:
        function = make()
        function()
    except (AttributeError, TypeError) as error:  # a private helper changed: say so
        print(f"  ({name}: {error})")
        return name, None
    return name, _best_us(function, number)


def breakdown(number: int = 2000) -> tuple[list[tuple[str, float | None]], float, float]:
    issuer = TestIssuer()
    settings = issuer.settings()
    token = mint_tokens(issuer, 1)[0]
    public_key = issuer.private_key.public_key()
    ((signature, signing_input),) = signature_parts([token])
    now = time.time()
    header, payload, _, _ = T._split(token)
    source = key_source_for(settings)
    key = drive(source.get_key(header.get("kid")))
    claims = ClerkClaims.from_payload(payload)
    policy = settings.verification_policy()
    big = TokenCache(10**9, settings.leeway)
    counter = iter(range(10**9))

    def checks() -> None:
        T._check_algorithm(header)
        T._check_claim_types(payload)
        T._check_token_type(header, payload, settings)
        T._check_times(payload, settings, now)
        T._check_issuer(payload, settings)
        T._check_audience(payload, settings)
        T._check_authorized_party(payload, settings)
        T._check_session_status(payload, settings)

    cache_size, leeway = settings.token_cache_size, settings.leeway
    plan: list[tuple[str, Callable[[], Callable[[], Any]], int]] = [
        ("floor: cryptography verify", lambda: lambda: public_key.verify(
            signature, signing_input, padding.PKCS1v15(), hashes.SHA256()), number),
        ("python-jose key.verify (floor + wrapper)",
         lambda: lambda: key.verify(signing_input, signature), number),
        ("_split: size, 3 regex, 3 base64, 2 json", lambda: lambda: T._split(token), number),
        ("claim and header checks (8 functions)", lambda: checks, number * 10),
        ("ClerkClaims.from_payload (pydantic)",
         lambda: lambda: ClerkClaims.from_payload(payload), number * 5),
        ("  of which the model_validator _normalize",
         lambda: lambda: ClerkClaims._normalize(payload), number * 5),
        ("key_source_for(settings)", lambda: lambda: key_source_for(settings), number * 20),
        ("settings.verification_policy()", lambda: settings.verification_policy, number * 20),
        ("token_cache_for(...)",
         lambda: lambda: token_cache_for(source, policy, cache_size, leeway), number * 20),
        ("source.get_key(kid) (coroutine)",
         lambda: lambda: drive(source.get_key("kid")), number * 20),
        ("TokenCache.put (new token)",
         lambda: lambda: big.put(f"t{next(counter)}", claims, 0), number * 5),
        ("TokenCache.get (hit)", lambda: lambda: big.get("t0", now, 0), number * 20),
    ]  # fmt: skip
    steps = [_step(name, make, n) for name, make, n in plan]
    tokens = mint_tokens(issuer, 200)

    def cold_batch() -> None:
        clear_token_cache(settings)
        for one in tokens:
            drive(verify_token(one, settings))

    cold = min(timeit.repeat(cold_batch, number=1, repeat=7)) / len(tokens) * 1e6
    drive(verify_token(token, settings))
    warm = _best_us(lambda: drive(verify_token(token, settings)), number * 20)
    return steps, cold, warm


# -- reference points: how cheap can a Python verifier of these tokens be? ----------------

_COMPACT = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)")
_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64(segment: str) -> bytes:
    return binascii.a2b_base64(
        segment.encode("ascii").translate(_URLSAFE) + b"=" * (-len(segment) % 4)
    )


def minimal_verifier(public_key: Any) -> Callable[[str], dict[str, Any]]:
    """The least a correct RS256 check of these tokens does in Python: one regex, three
    base64 and two JSON decodes, the signature, ``alg`` and ``exp``. No claims model, none
    of Clerk's rules: a yardstick, not a proposal."""
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    def verify(token: str) -> dict[str, Any]:
        match = _COMPACT.fullmatch(token)
        if match is None:
            raise ValueError("not a JWT")
        header_b64, payload_b64, signature_b64 = match.groups()
        header = json.loads(_b64(header_b64).decode())
        payload: dict[str, Any] = json.loads(_b64(payload_b64).decode())
        if header.get("alg") != "RS256":
            raise ValueError("alg")
        public_key.verify(_b64(signature_b64), token[: match.end(2)].encode("ascii"), pkcs1, sha256)
        if payload["exp"] <= time.time():
            raise ValueError("expired")
        return payload

    return verify


def reference_points(count: int = 1000, repeats: int = 9) -> dict[str, float]:
    issuer = TestIssuer()
    settings = issuer.settings()
    tokens = mint_tokens(issuer, count)
    public_key = issuer.private_key.public_key()
    minimal = minimal_verifier(public_key)

    def loop(name: str, verify: Callable[[str], Any]) -> Measurement:
        def run() -> int:
            for token in tokens:
                verify(token)
            return len(tokens)

        return Measurement(name, run)

    timings = measure_round_robin(
        [
            latency.floor(public_key, tokens),
            loop("minimal Python verifier, dict claims", minimal),
            loop(
                "minimal + ClerkClaims.from_payload",
                lambda token: ClerkClaims.from_payload(minimal(token)),
            ),
            latency.verify_cold(settings, tokens),
        ],
        repeats,
    )
    return {name: timing.median_us for name, timing in timings.items()}


def profile(label: str, function: Callable[[], None], top: int = 18) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    function()
    profiler.disable()
    print(f"\ncProfile, {label} (sorted by own time):")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    steps, cold, warm = breakdown()
    print(f"verify_token cold: {cold:.1f} us (best of 7 x 200 tokens); warm: {warm:.2f} us\n")
    print("| step | us (best of 7) | share of cold |")
    print("|---|---|---|")
    for name, us in steps:
        if us is None:
            print(f"| {name} | n/a | |")
        else:
            print(f"| {name} | {us:.2f} | {us / cold:.0%} |")
    print("\nReference points (thread CPU time, median of 9 round-robin repeats, 1,000 tokens):\n")
    points = reference_points()
    floor_us = points["floor"]
    print("| verifier | us | x floor |")
    print("|---|---|---|")
    for name, us in points.items():
        print(f"| {name} | {us:.1f} | {us / floor_us:.2f}x |")
    if args.cprofile:
        issuer = TestIssuer()
        settings = issuer.settings()
        tokens = mint_tokens(issuer, 2000)

        def cold_run() -> None:
            for token in tokens:
                drive(verify_token(token, settings))

        def warm_run() -> None:
            for _ in range(50_000):
                drive(verify_token(tokens[0], settings))

        profile("cold: 2,000 distinct tokens", cold_run)
        profile("warm: one token x 50,000", warm_run)


if __name__ == "__main__":
    main()
