"""Who may use the cloud: the embedded identities, their tokens, and authentication."""

from transcell.identity.store import IdentityStore, bootstrap, clouds_yaml

__all__ = ["IdentityStore", "bootstrap", "clouds_yaml"]
