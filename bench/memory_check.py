"""Memory: resident size after verifying many distinct tokens with the default cache size.

Run in its own process (``python bench/memory_check.py --tokens 100000``) so the baseline is
clean, and print one JSON object. Method:

* resident size is ``VmRSS`` from ``/proc/self/status`` (the current resident set, which a
  leak would grow); the peak (``VmHWM``) is reported too; ``resource.getrusage`` max RSS is
  the fallback where ``/proc`` does not exist;
* the baseline is taken after imports, the minting pool's start and 200 verifications
  (so code paths, pydantic's validators and the key are warm), after ``gc.collect()``;
* tokens are signed in worker processes and streamed in batches of 250 (at most a few
  batches in flight), verified once each with ``verify_token`` and dropped: the process never
  holds the whole set, so what stays resident is what the library keeps;
* to keep minting 100,000 tokens within about half a minute on two cores, they are signed
  with an RSA-1024 key (about 5 times faster to sign than RSA-2048). The claims and header are
  Clerk's; only the signature segment is shorter (171 characters instead of 342), so each
  cached token text is about 170 bytes smaller than with Clerk's 2048-bit keys. The report adds
  that difference back for the entries left in the cache (``adjusted_mb``), and the bound is
  checked against the adjusted figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from itertools import chain
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from latency import drive
from minting import iter_token_batches, mint_one

from clerk_deps import verify_token
from clerk_deps.keys import key_source_for
from clerk_deps.testing import TestIssuer
from clerk_deps.token_cache import token_cache_for

DEFAULT_BOUND_MB = 64.0
SIGNATURE_CHARS_2048 = 342
SIGNATURE_CHARS_1024 = 171


def resident_mb() -> tuple[float, float, str]:
    """(current, peak) resident size in MB and where it came from."""
    status = Path("/proc/self/status")
    if status.exists():
        values = {}
        for line in status.read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) / 1024  # kB
        return values["VmRSS"], values["VmHWM"], "/proc/self/status VmRSS"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    return peak_mb, peak_mb, "getrusage ru_maxrss"


def check_memory(
    count: int, bound_mb: float = DEFAULT_BOUND_MB, key_size: int = 1024
) -> dict[str, Any]:
    started = time.perf_counter()
    issuer = TestIssuer(
        private_key=rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    )
    settings = issuer.settings()  # token_cache_size: the default
    cache = token_cache_for(
        key_source_for(settings), settings.verification_policy(), settings.token_cache_size,
        settings.leeway,
    )  # fmt: skip
    assert cache is not None
    for index in range(200):
        drive(verify_token(mint_one(issuer, 10_000_000 + index), settings))
    cache.clear()
    batches = iter_token_batches(issuer, count)
    first = next(batches)  # the pool is up before the baseline is taken
    gc.collect()
    baseline, _, source = resident_mb()
    verified = 0
    for tokens in chain([first], batches):
        for token in tokens:
            drive(verify_token(token, settings))
        verified += len(tokens)
    del first, tokens
    gc.collect()
    after, peak, _ = resident_mb()
    growth = after - baseline
    entries = len(cache)
    shorter = (SIGNATURE_CHARS_2048 - SIGNATURE_CHARS_1024) if key_size == 1024 else 0
    adjusted = growth + entries * shorter / (1024 * 1024)
    return {
        "tokens": verified,
        "cache_size": settings.token_cache_size,
        "cache_entries": entries,
        "key_size": key_size,
        "source": source,
        "baseline_mb": round(baseline, 1),
        "after_mb": round(after, 1),
        "peak_mb": round(peak, 1),
        "growth_mb": round(growth, 1),
        "adjusted_mb": round(adjusted, 1),
        "bytes_per_entry": round(adjusted * 1024 * 1024 / entries) if entries else None,
        "bound_mb": bound_mb,
        "passed": adjusted < bound_mb and entries <= settings.token_cache_size,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--bound-mb", type=float, default=DEFAULT_BOUND_MB)
    parser.add_argument("--key-size", type=int, default=1024, choices=(1024, 2048))
    args = parser.parse_args()
    print(json.dumps(check_memory(args.tokens, args.bound_mb, args.key_size)))


if __name__ == "__main__":
    main()
