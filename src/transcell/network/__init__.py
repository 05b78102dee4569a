"""The network service: a Neutron v2.0 subset with its own database.

``NetworkService`` is the way in; ``transcell.api.network`` serves it over HTTP.
"""

from transcell.network.service import NetworkService

__all__ = ["NetworkService"]
