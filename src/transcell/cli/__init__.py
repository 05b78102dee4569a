"""The ``transcell`` command."""
