"""transcell: a cell-sharded compute service that moves servers between cells."""

__version__ = "0.1.0"
