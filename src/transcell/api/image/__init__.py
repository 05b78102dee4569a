"""The Image API (Glance v2) over transcell's image service."""

from __future__ import annotations

from transcell.api.image.app import ImageApp, make_app

__all__ = ["ImageApp", "make_app"]
