"""Draining a cell: every server moved off it in waves, durably."""
