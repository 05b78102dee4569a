"""Compute host agents: one per host, each in one cell."""
