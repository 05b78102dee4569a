"""Choosing hosts: Placement candidates, then filters and weighers."""
