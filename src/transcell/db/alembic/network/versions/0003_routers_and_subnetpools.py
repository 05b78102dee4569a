"""routers and subnet pools

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 08:00:00

Routers (records: interfaces are ports with the router's id as device_id) and
subnet pools, each with the standard attributes (description, tags, revision
number, timestamps) every Neutron resource has.
"""

import sqlalchemy as sa
from alembic import op

import transcell.db.types

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _standard() -> list[sa.Column]:
    return [
        sa.Column('description', sa.String(length=255), nullable=False),
        sa.Column('tags', transcell.db.types.JSONText(), nullable=False),
        sa.Column('revision_number', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        'routers',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('project_id', sa.String(length=255), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('admin_state_up', sa.Boolean(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('gw_network_id', sa.String(length=36), nullable=True),
        sa.Column('enable_snat', sa.Boolean(), nullable=False),
        *_standard(),
        sa.ForeignKeyConstraint(['gw_network_id'], ['networks.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('routers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_routers_project_id'), ['project_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_routers_gw_network_id'), ['gw_network_id'],
                              unique=False)
    op.create_table(
        'subnetpools',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('project_id', sa.String(length=255), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('ip_version', sa.Integer(), nullable=False),
        sa.Column('prefixes', transcell.db.types.JSONText(), nullable=False),
        sa.Column('min_prefixlen', sa.Integer(), nullable=False),
        sa.Column('max_prefixlen', sa.Integer(), nullable=False),
        sa.Column('default_prefixlen', sa.Integer(), nullable=False),
        sa.Column('default_quota', sa.Integer(), nullable=True),
        sa.Column('shared', sa.Boolean(), nullable=False),
        sa.Column('is_default', sa.Boolean(), nullable=False),
        *_standard(),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('subnetpools', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subnetpools_project_id'), ['project_id'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('subnetpools')
    op.drop_table('routers')
