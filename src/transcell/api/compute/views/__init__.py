"""Response bodies per microversion, one module per resource."""
