"""Shared pytest configuration. Fixtures specific to one area live beside its tests."""
