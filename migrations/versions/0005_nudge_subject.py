"""Nudges keep their subject (email subject / push title) and why a send failed.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.execute("ALTER TABLE nudges ADD COLUMN subject text, ADD COLUMN failure_reason text")


def downgrade() -> None:
    op.execute("ALTER TABLE nudges DROP COLUMN subject, DROP COLUMN failure_reason")
