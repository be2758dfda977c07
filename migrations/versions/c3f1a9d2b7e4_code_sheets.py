"""Code sheets: a new set waits, encrypted and bound to its session, until it is saved

Revision ID: c3f1a9d2b7e4
Revises: a657d4791dc1
Create Date: 2026-11-29 13:20:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c3f1a9d2b7e4"
down_revision = "a657d4791dc1"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "code_sheets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("public_id", sa.String(length=8), nullable=False),
        sa.Column("salt", sa.String(length=29), nullable=False),
        sa.Column("digests", sa.Text(), nullable=False),
        sa.Column("codes_token", sa.Text(), nullable=False),
        sa.Column("in_use", sa.Boolean(), nullable=False),
        sa.Column("check_number", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["user_sessions.id"],
            name=op.f("fk_code_sheets_session_id_user_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_code_sheets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_sheets")),
        sa.UniqueConstraint("user_id", name=op.f("uq_code_sheets_user_id")),
    )
    with op.batch_alter_table("code_sheets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_code_sheets_session_id"), ["session_id"], unique=False)


def downgrade():
    with op.batch_alter_table("code_sheets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_code_sheets_session_id"))
    op.drop_table("code_sheets")
