"""A small WSGI toolkit shared by every API transcell serves.

Each API declares one route table (path template -> {method: handler}); the
router answers 405 for a wrong method and 404 for an unknown path, so a reader
learns an API's whole surface from its table. webob is used because the real
Placement (mounted beside us) already depends on it.
"""
