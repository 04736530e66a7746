"""End-to-end tests: the real bot (``python bot.py``) against local Discord and WAN fakes."""
