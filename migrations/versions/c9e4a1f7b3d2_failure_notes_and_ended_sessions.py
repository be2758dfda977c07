"""The owner's own mistakes told apart from others' failures, and why a session was ended

Revision ID: c9e4a1f7b3d2
Revises: b8d3f0a5e2c9
Create Date: 2026-12-01 10:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c9e4a1f7b3d2"
down_revision = "b8d3f0a5e2c9"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("attempt_counters") as batch_op:
        batch_op.add_column(sa.Column("failures_since", sa.DateTime(), nullable=True))
    op.create_table(
        "ended_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ended_sessions") as batch_op:
        batch_op.create_index(batch_op.f("ix_ended_sessions_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ended_sessions_ended_at"), ["ended_at"], unique=False)


def downgrade():
    with op.batch_alter_table("ended_sessions") as batch_op:
        batch_op.drop_index(batch_op.f("ix_ended_sessions_ended_at"))
        batch_op.drop_index(batch_op.f("ix_ended_sessions_user_id"))
    op.drop_table("ended_sessions")
    with op.batch_alter_table("attempt_counters") as batch_op:
        batch_op.drop_column("failures_since")
