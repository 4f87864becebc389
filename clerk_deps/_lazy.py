"""Lazy package exports (PEP 562).

``import clerk_deps`` (and the pytest plugin, which Python imports inside the package) must not
import FastAPI and everything else up front: a test run that never uses the fixtures should not
pay for them. Each public name is imported from its module on first access, then cached.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any


def load_export(package: str, exports: Mapping[str, str], name: str) -> Any:
    """The public ``name`` of ``package``, imported from the module ``exports`` names."""
    module = exports.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, package), name)
    setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
    return value
