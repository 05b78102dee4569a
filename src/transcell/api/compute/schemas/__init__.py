"""JSON schemas for request bodies, one module per resource, per microversion where they differ."""
