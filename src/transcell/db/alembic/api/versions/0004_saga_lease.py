"""move saga lease: generation and lease expiry

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00

A saga row already being worked on when this runs keeps its owner but gets
no lease (NULL), which every conductor reads as expired: stop the old
conductors before upgrading, as their writes do not check the generation.
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('move_sagas', schema=None) as batch_op:
        batch_op.add_column(sa.Column('generation', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('lease_expires_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('move_sagas', schema=None) as batch_op:
        batch_op.drop_column('lease_expires_at')
        batch_op.drop_column('generation')
