"""Trusted devices, and a counter kind for the two-factor step of a recovery

Revision ID: d4e2b8c1a9f5
Revises: c3f1a9d2b7e4
Create Date: 2026-11-29 14:15:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d4e2b8c1a9f5"
down_revision = "c3f1a9d2b7e4"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "trusted_devices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_trusted_devices_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trusted_devices")),
    )
    with op.batch_alter_table("trusted_devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trusted_devices_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("attempt_counters", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recovery_failures", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("next_recovery_attempt_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("attempt_counters", schema=None) as batch_op:
        batch_op.drop_column("next_recovery_attempt_at")
        batch_op.drop_column("recovery_failures")
    with op.batch_alter_table("trusted_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trusted_devices_user_id"))
    op.drop_table("trusted_devices")
