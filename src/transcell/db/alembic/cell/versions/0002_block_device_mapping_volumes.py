"""block device mappings of volumes: unique device names, volume and attachment lookups

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 13:30:00

connection_info keeps its text column; it now holds JSON, which rows written
before this revision never had (they were all image mappings).
"""

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('block_device_mapping', schema=None) as batch_op:
        batch_op.create_unique_constraint(
            'uniq_block_device_mapping0instance_uuid0device_name0deleted',
            ['instance_uuid', 'device_name', 'deleted'])
        batch_op.create_index('block_device_mapping_volume_id_idx', ['volume_id'],
                              unique=False)
        batch_op.create_index('block_device_mapping_attachment_id_idx', ['attachment_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('block_device_mapping', schema=None) as batch_op:
        batch_op.drop_index('block_device_mapping_attachment_id_idx')
        batch_op.drop_index('block_device_mapping_volume_id_idx')
        batch_op.drop_constraint('uniq_block_device_mapping0instance_uuid0device_name0deleted',
                                 type_='unique')
