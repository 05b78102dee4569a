"""segments, deferred port addresses, security group rules

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 13:20:00

Segments (routed provider networks) and the subnets and ports that use them;
security group rules as rows, so they can be changed. Each existing default
group gets the four rules it showed until now, under the same ids, and a row
in default_security_groups; group names stop being unique per project.
"""

import uuid

import sqlalchemy as sa
from alembic import op

import transcell.db.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

#: the namespace the rule ids of default groups were derived from before this
RULE_NAMESPACE = uuid.UUID("1f0c7d6e-3b1a-4c55-9a43-6f1e2f7b5c10")


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
        'segments',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('network_id', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=True),
        sa.Column('network_type', sa.String(length=32), nullable=False),
        sa.Column('physical_network', sa.String(length=64), nullable=True),
        sa.Column('segmentation_id', sa.Integer(), nullable=True),
        sa.Column('cells', transcell.db.types.JSONText(), nullable=False),
        *_standard(),
        sa.ForeignKeyConstraint(['network_id'], ['networks.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_segments_network_id'), ['network_id'],
                              unique=False)
    with op.batch_alter_table('subnets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('segment_id', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_subnets_segment_id'), ['segment_id'],
                              unique=False)
        batch_op.create_foreign_key('fk_subnets_segment_id_segments', 'segments',
                                    ['segment_id'], ['id'])
    with op.batch_alter_table('ports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ip_allocation', sa.String(length=16), nullable=False,
                                      server_default='immediate'))
        batch_op.add_column(sa.Column('readdressed_from', transcell.db.types.JSONText(),
                                      nullable=True))

    with op.batch_alter_table('security_groups', schema=None) as batch_op:
        batch_op.drop_constraint('uniq_security_groups0project_id0name', type_='unique')
        batch_op.create_index(batch_op.f('ix_security_groups_project_id'), ['project_id'],
                              unique=False)
    defaults = op.create_table(
        'default_security_groups',
        sa.Column('project_id', sa.String(length=255), nullable=False),
        sa.Column('security_group_id', sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(['security_group_id'], ['security_groups.id'],
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id'),
        sa.UniqueConstraint('security_group_id'),
    )
    rules = op.create_table(
        'security_group_rules',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('security_group_id', sa.String(length=36), nullable=False),
        sa.Column('project_id', sa.String(length=255), nullable=False),
        sa.Column('direction', sa.String(length=16), nullable=False),
        sa.Column('ethertype', sa.String(length=8), nullable=False),
        sa.Column('protocol', sa.String(length=40), nullable=True),
        sa.Column('port_range_min', sa.Integer(), nullable=True),
        sa.Column('port_range_max', sa.Integer(), nullable=True),
        sa.Column('remote_ip_prefix', sa.String(length=64), nullable=True),
        sa.Column('remote_group_id', sa.String(length=36), nullable=True),
        *_standard(),
        sa.ForeignKeyConstraint(['security_group_id'], ['security_groups.id'],
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['remote_group_id'], ['security_groups.id'],
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('security_group_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_security_group_rules_security_group_id'),
                              ['security_group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_security_group_rules_project_id'),
                              ['project_id'], unique=False)

    groups = sa.table('security_groups', sa.column('id'), sa.column('project_id'),
                      sa.column('name'), sa.column('created_at', sa.DateTime()))
    found = op.get_bind().execute(
        sa.select(groups.c.id, groups.c.project_id, groups.c.created_at)
        .where(groups.c.name == 'default')).all()
    if found:
        op.bulk_insert(defaults, [{"project_id": project, "security_group_id": group}
                                  for group, project, _created in found])
        op.bulk_insert(rules, [
            {"id": str(uuid.uuid5(RULE_NAMESPACE, f"{group}/{direction}/{ethertype}")),
             "security_group_id": group, "project_id": project, "direction": direction,
             "ethertype": ethertype, "protocol": None, "port_range_min": None,
             "port_range_max": None, "remote_ip_prefix": None,
             "remote_group_id": group if direction == "ingress" else None,
             "description": "", "tags": [], "revision_number": 0,
             "created_at": created, "updated_at": created}
            for group, project, created in found
            for ethertype in ("IPv4", "IPv6") for direction in ("egress", "ingress")])


def downgrade() -> None:
    op.drop_table('security_group_rules')
    op.drop_table('default_security_groups')
    with op.batch_alter_table('security_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_security_groups_project_id'))
        batch_op.create_unique_constraint('uniq_security_groups0project_id0name',
                                          ['project_id', 'name'])
    with op.batch_alter_table('ports', schema=None) as batch_op:
        batch_op.drop_column('readdressed_from')
        batch_op.drop_column('ip_allocation')
    with op.batch_alter_table('subnets', schema=None) as batch_op:
        batch_op.drop_constraint('fk_subnets_segment_id_segments', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_subnets_segment_id'))
        batch_op.drop_column('segment_id')
    op.drop_table('segments')
