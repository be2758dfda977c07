"""The "A backup code was used" notice is dismissed per session

Revision ID: a7c2e9f4d1b8
Revises: f6a4d0e2c3b7
Create Date: 2026-11-29 16:10:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a7c2e9f4d1b8"
down_revision = "f6a4d0e2c3b7"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user_sessions") as batch_op:
        batch_op.add_column(sa.Column("notice_dismissed_event_id", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("user_sessions") as batch_op:
        batch_op.drop_column("notice_dismissed_event_id")
