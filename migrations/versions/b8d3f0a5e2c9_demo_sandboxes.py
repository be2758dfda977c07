"""Demo sandboxes: an account made by "Try the demo" expires, and shows its generated password

Revision ID: b8d3f0a5e2c9
Revises: a7c2e9f4d1b8
Create Date: 2026-11-29 18:50:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b8d3f0a5e2c9"
down_revision = "a7c2e9f4d1b8"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("sandbox_expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("sandbox_password", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("sandbox_password_hash", sa.String(length=60), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_users_sandbox_expires_at"), ["sandbox_expires_at"], unique=False
        )


def downgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_sandbox_expires_at"))
        batch_op.drop_column("sandbox_password_hash")
        batch_op.drop_column("sandbox_password")
        batch_op.drop_column("sandbox_expires_at")
