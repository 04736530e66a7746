"""The store as callers see it: one object, one flat set of method names, every name where it
was before the package split."""

from __future__ import annotations

import inspect

import core.store
from core.store import (
    AuditQueries,
    CharacterQueries,
    HintQueries,
    JobQueries,
    LeaseQueries,
    LedgerQueries,
    ModerationQueries,
    Store,
)

CONCERNS = (
    JobQueries,
    LeaseQueries,
    LedgerQueries,
    ModerationQueries,
    AuditQueries,
    CharacterQueries,
    HintQueries,
)


def public_methods(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")}


def test_no_two_concerns_define_the_same_method() -> None:
    seen: dict[str, str] = {}
    for concern in CONCERNS:
        for name in public_methods(concern):
            assert name not in seen, f"{name} is in {seen.get(name)} and {concern.__name__}"
            seen[name] = concern.__name__
    assert set(Store.__mro__[1 : len(CONCERNS) + 1]) == set(CONCERNS)
    for name in seen:
        assert inspect.iscoroutinefunction(getattr(Store, name)), name


def test_every_name_the_code_imported_from_the_old_modules_is_still_there() -> None:
    # core/store.py, core/character_store.py and core/hint_store.py before the split.
    names = [
        "AuditEntry",
        "AuditRecord",
        "Ban",
        "GuildSettings",
        "LedgerEntry",
        "NewJob",
        "QuotaExceeded",
        "QuotaLimits",
        "Store",
        "TooManyJobs",
        "UsageRow",
        "UserOverride",
        "quota_advice",
        "utc_day",
        "Character",
        "CharacterQueries",
        "Files",
        "NameTaken",
        "NewCharacter",
        "HintQueries",
    ]
    assert [name for name in names if not hasattr(core.store, name)] == []
    assert set(names) <= set(core.store.__all__)
