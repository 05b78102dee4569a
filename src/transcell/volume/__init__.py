"""The volume service (a Cinder v3 subset): volumes as sparse raw files on backends
that reach some cells, their attachments, and their migrations between backends."""
