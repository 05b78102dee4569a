"""server groups and stored quota limits

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 18:20:00
"""

import sqlalchemy as sa
from alembic import op

from transcell.db.types import JSONText

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [sa.Column('created_at', sa.DateTime(), nullable=False),
            sa.Column('updated_at', sa.DateTime(), nullable=True)]


def upgrade() -> None:
    op.create_table(
        'instance_groups',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('uuid', sa.String(36), nullable=False),
        sa.Column('name', sa.String(255), nullable=True),
        sa.Column('project_id', sa.String(255), nullable=False),
        sa.Column('user_id', sa.String(255), nullable=False),
        sa.Column('policy', sa.String(255), nullable=False),
        sa.Column('rules', JSONText(), nullable=True),
        *_timestamps(),
        sa.UniqueConstraint('uuid', name='uniq_instance_groups0uuid'))
    op.create_index('ix_instance_groups_project_id', 'instance_groups', ['project_id'])
    op.create_table(
        'instance_group_member',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('group_id', sa.Integer(),
                  sa.ForeignKey('instance_groups.id', ondelete='CASCADE'), nullable=False),
        sa.Column('instance_uuid', sa.String(36), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint('group_id', 'instance_uuid'))
    op.create_index('ix_instance_group_member_group_id', 'instance_group_member',
                    ['group_id'])
    op.create_index('ix_instance_group_member_instance_uuid', 'instance_group_member',
                    ['instance_uuid'])
    op.create_table(
        'quotas',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('project_id', sa.String(255), nullable=False),
        sa.Column('user_id', sa.String(255), nullable=False),
        sa.Column('resource', sa.String(255), nullable=False),
        sa.Column('hard_limit', sa.Integer(), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint('project_id', 'user_id', 'resource'))
    op.create_index('ix_quotas_project_id', 'quotas', ['project_id'])
    op.create_table(
        'quota_classes',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('class_name', sa.String(255), nullable=False),
        sa.Column('resource', sa.String(255), nullable=False),
        sa.Column('hard_limit', sa.Integer(), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint('class_name', 'resource'))


def downgrade() -> None:
    op.drop_table('quota_classes')
    op.drop_index('ix_quotas_project_id', table_name='quotas')
    op.drop_table('quotas')
    op.drop_table('instance_group_member')
    op.drop_index('ix_instance_groups_project_id', table_name='instance_groups')
    op.drop_table('instance_groups')
