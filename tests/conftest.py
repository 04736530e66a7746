"""Shared pytest configuration. Fixtures specific to one area live beside its tests."""

from hypothesis import settings

# No per-example deadline: a busy CI machine must not turn a slow example into a failure.
settings.register_profile("project", deadline=None)
settings.load_profile("project")
