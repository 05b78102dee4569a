"""The Neutron v2.0 API (a subset) in front of transcell's network service."""

from transcell.api.network.routes import make_app

__all__ = ["make_app"]
