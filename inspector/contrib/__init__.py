"""Integrations of ``inspector`` with frameworks; each needs its framework installed."""
