"""Alembic environment for the image schema (the metadata definitions catalog)."""

from transcell.db.alembic_env import run_migrations
from transcell.image.metadef_models import ImageBase as Base

target_metadata = Base.metadata

run_migrations(target_metadata)
