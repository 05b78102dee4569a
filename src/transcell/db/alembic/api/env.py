"""Alembic environment for the api schema."""

from transcell.db.alembic_env import run_migrations
from transcell.db.api_models import APIBase as Base

target_metadata = Base.metadata

run_migrations(target_metadata)
