"""cell drains

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 08:40:00
"""

import sqlalchemy as sa
from alembic import op

from transcell.db.types import JSONText

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'cell_drains',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('uuid', sa.String(36), nullable=False),
        sa.Column('cell_uuid', sa.String(36), nullable=False),
        sa.Column('to_cell_uuid', sa.String(36), nullable=True),
        sa.Column('status', sa.String(32), nullable=False),
        # the cell while the drain is unfinished, then NULL: one drain per cell at a time
        sa.Column('active_cell', sa.String(36), nullable=True),
        sa.Column('settings', JSONText(), nullable=False),
        sa.Column('servers', JSONText(), nullable=False),
        sa.Column('context', JSONText(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('owner', sa.String(255), nullable=True),
        sa.Column('lease_expires_at', sa.DateTime(), nullable=True),
        sa.Column('started_at', sa.DateTime(), nullable=True),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.UniqueConstraint('uuid', name='uniq_cell_drains0uuid'),
        sa.UniqueConstraint('active_cell', name='uniq_cell_drains0active_cell'))
    op.create_index('ix_cell_drains_cell_uuid', 'cell_drains', ['cell_uuid'])
    op.create_index('ix_cell_drains_status', 'cell_drains', ['status'])


def downgrade() -> None:
    op.drop_index('ix_cell_drains_status', 'cell_drains')
    op.drop_index('ix_cell_drains_cell_uuid', 'cell_drains')
    op.drop_table('cell_drains')
