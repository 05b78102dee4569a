"""Databases: the global API database and one database per cell (plus cell0)."""
