"""The Block storage API (Cinder v3, a subset) in front of transcell's volume service."""

from transcell.api.volume.routes import make_app

__all__ = ["make_app"]
