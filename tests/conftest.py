"""Fixtures shared by the whole suite; each lives in a module of ``tests/support``."""

from support.site import site  # noqa: F401
