"""Running transcell as separate service processes: the distributed layout."""
