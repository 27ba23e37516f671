"""`unifocus demo`'s data: two demo tenants seeded through the real API (see `scenario` for
the story and `seed` for how)."""

from unifocus.demo.seed import seed_demo

__all__ = ["seed_demo"]
