"""Verified email addresses

Revision ID: e5f3c9d0b1a6
Revises: d4e2b8c1a9f5
Create Date: 2026-11-29 14:40:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e5f3c9d0b1a6"
down_revision = "d4e2b8c1a9f5"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_verified_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("email_verified_at")
