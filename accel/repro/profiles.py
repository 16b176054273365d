"""Profiles: one notebook, three budgets.

``smoke`` runs in seconds (tests), ``cpu`` is the default (minutes on a laptop, the
claims still hold), ``full`` is the published GPU run. A notebook states each knob's
value per profile; a parameter passed explicitly (not ``None``) wins.
"""
from __future__ import annotations

from typing import Any, Mapping

PROFILES = ("smoke", "cpu", "full")


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    return profile


def resolve(
    profile: str,
    table: Mapping[str, Mapping[str, Any]],
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Knob values for ``profile`` from ``table`` (profile -> knob -> value).

    ``overrides`` are the notebook's parameters: any that is not ``None`` replaces the
    profile's value. An override naming no knob of the table is an error, so a typo
    cannot silently fall back to the default.
    """
    check_profile(profile)
    missing = [p for p in PROFILES if p not in table]
    if missing:
        raise ValueError(f"profile table lacks {missing}; it must define {list(PROFILES)}")
    knobs = set(table[profile])
    for p in PROFILES:
        if set(table[p]) != knobs:
            raise ValueError(f"profile {p!r} defines {sorted(table[p])}, expected {sorted(knobs)}")
    cfg = dict(table[profile])
    for name, value in (overrides or {}).items():
        if name not in knobs:
            raise ValueError(f"unknown knob {name!r}; valid knobs: {', '.join(sorted(knobs))}")
        if value is not None:
            cfg[name] = value
    return cfg
