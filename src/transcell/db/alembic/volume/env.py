"""Alembic environment for the volume schema."""

from transcell.db.alembic_env import run_migrations
from transcell.volume.models import VolumeBase as Base

target_metadata = Base.metadata

run_migrations(target_metadata)
