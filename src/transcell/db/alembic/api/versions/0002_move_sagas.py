"""move sagas

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 21:55:00
"""

import sqlalchemy as sa
from alembic import op

import transcell.db.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'move_sagas',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uuid', sa.String(length=36), nullable=False),
        sa.Column('instance_uuid', sa.String(length=36), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('steps', transcell.db.types.JSONText(), nullable=False),
        sa.Column('resources', transcell.db.types.JSONText(), nullable=False),
        sa.Column('flipped', sa.Boolean(), nullable=False),
        sa.Column('context', transcell.db.types.JSONText(), nullable=False),
        sa.Column('owner', sa.String(length=255), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('uuid'),
    )
    with op.batch_alter_table('move_sagas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_move_sagas_instance_uuid'), ['instance_uuid'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_move_sagas_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('move_sagas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_move_sagas_status'))
        batch_op.drop_index(batch_op.f('ix_move_sagas_instance_uuid'))
    op.drop_table('move_sagas')
