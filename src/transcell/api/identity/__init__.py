"""The Keystone v3 subset transcell serves at /identity."""

from transcell.api.identity.app import format_error, make_app

__all__ = ["format_error", "make_app"]
