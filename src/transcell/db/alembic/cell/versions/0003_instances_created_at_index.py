"""instances: an index on (deleted, created_at), Nova's instances_deleted_created_at_idx.

A list of servers asks every cell for its first page in creation order (newest
first, by default); without this index each cell sorts all its live rows to
return a thousand, which at 10,000 servers a cell is most of the request.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('instances_deleted_created_at_idx', 'instances',
                    ['deleted', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('instances_deleted_created_at_idx', table_name='instances')
