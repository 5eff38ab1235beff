"""Roll-ups written by the nightly maintenance job: weekly progress and daily DCI per user.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE progress_weekly (
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            week text NOT NULL,
            completed integer NOT NULL,
            skipped integer NOT NULL,
            minutes integer NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (user_id, week)
        );
        CREATE TABLE dci_daily (
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            day date NOT NULL,
            dci double precision NOT NULL,
            zone text NOT NULL,
            terms jsonb NOT NULL,
            PRIMARY KEY (user_id, day)
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE dci_daily, progress_weekly")
