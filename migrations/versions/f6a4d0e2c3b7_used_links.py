"""Used single-use links

Revision ID: f6a4d0e2c3b7
Revises: e5f3c9d0b1a6
Create Date: 2026-11-29 14:35:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f6a4d0e2c3b7"
down_revision = "e5f3c9d0b1a6"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "used_links",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_used_links")),
    )


def downgrade():
    op.drop_table("used_links")
