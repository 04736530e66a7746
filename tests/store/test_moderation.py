"""Moderators' settings, overrides, bans and channel rules, each with its audit row."""

from __future__ import annotations

import pytest

from core.store import AuditRecord, GuildSettings, Store, UserOverride
from tests.store.helpers import GUILD, NOW, USER


async def test_settings_overrides_bans_rules_and_audit_in_one_transaction(store: Store) -> None:
    audit = AuditRecord(GUILD, 1, "defaults", None, {"daily": None}, {"daily": 30})
    await store.save_guild_settings(GuildSettings(GUILD, daily_seconds=30, paused=True), NOW, audit)
    assert (await store.guild_settings(GUILD)).daily_seconds == 30
    assert (await store.guild_settings(GUILD)).paused is True
    assert (await store.guild_settings(999)) == GuildSettings(999)
    await store.save_user_override(UserOverride(GUILD, USER, daily_seconds=90), NOW)
    assert (await store.user_override(GUILD, USER)).daily_seconds == 90
    await store.ban(GUILD, USER, "spam", 1, NOW)
    ban = await store.get_ban(GUILD, USER)
    assert ban is not None and ban.reason == "spam"
    assert await store.unban(GUILD, USER, NOW) is True
    assert await store.unban(GUILD, USER, NOW) is False
    await store.set_channel_rule(GUILD, 5, "allow", NOW)
    await store.set_channel_rule(GUILD, 6, "deny", NOW)
    await store.set_channel_rule(GUILD, 6, None, NOW)
    assert await store.channel_rules(GUILD) == {5: "allow"}
    entries = await store.audit_entries(GUILD)
    assert [(e.action, e.after) for e in entries] == [("defaults", {"daily": 30})]


async def test_a_failed_write_leaves_no_audit_row(store: Store) -> None:
    audit = AuditRecord(GUILD, 1, "grant", str(USER), None, {"seconds": -5})
    with pytest.raises(ValueError):
        await store.grant(GUILD, USER, -5, actor_id=1, now=NOW, audit=audit)
    assert await store.audit_entries(GUILD) == []
