"""volume snapshots

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 08:10:00
"""

import sqlalchemy as sa
from alembic import op

import transcell.db.types

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('snapshots',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('backend', sa.String(length=255), nullable=False),
    sa.Column('metadata', transcell.db.types.JSONText(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_snapshots_volume_id'), ['volume_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_snapshots_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_snapshots_status'), ['status'], unique=False)
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('snapshot_id', sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.drop_column('snapshot_id')
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_snapshots_status'))
        batch_op.drop_index(batch_op.f('ix_snapshots_project_id'))
        batch_op.drop_index(batch_op.f('ix_snapshots_volume_id'))
    op.drop_table('snapshots')
