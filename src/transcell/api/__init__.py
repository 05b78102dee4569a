"""The HTTP APIs transcell serves: compute, identity, image, network (and Placement mounted)."""
