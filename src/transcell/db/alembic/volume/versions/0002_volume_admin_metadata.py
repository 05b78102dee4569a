"""volume admin metadata

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 13:35:00
"""

import sqlalchemy as sa
from alembic import op

import transcell.db.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('admin_metadata', transcell.db.types.JSONText(),
                                      nullable=False, server_default='{}'))


def downgrade() -> None:
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.drop_column('admin_metadata')
