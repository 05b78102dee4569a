"""Alembic environment for the network schema."""

from transcell.db.alembic_env import run_migrations
from transcell.network.models import NetworkBase as Base

target_metadata = Base.metadata

run_migrations(target_metadata)
