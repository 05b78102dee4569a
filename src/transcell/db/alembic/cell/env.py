"""Alembic environment for the cell schema."""

from transcell.db.alembic_env import run_migrations
from transcell.db.cell_models import CellBase as Base

target_metadata = Base.metadata

run_migrations(target_metadata)
