"""Placement: the real openstack-placement service and transcell's client for it.

``embedded`` mounts the service in-process (its own configuration, its own
database); ``client`` is how every transcell service reads and claims
resources, whether Placement is in-process or reached by URL.
"""
