"""Narrative beats, hidden quests, weekly insights and nudges.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE narrative_beats (
            id uuid PRIMARY KEY,
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            goal_id uuid NOT NULL REFERENCES goals(id) ON DELETE CASCADE,
            beat_type text NOT NULL CHECK (beat_type IN
                ('progression', 'character_moment', 'hidden_quest_unlock', 'milestone')),
            trigger_key text NOT NULL,
            text text NOT NULL,
            unlocks jsonb NOT NULL DEFAULT '[]'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (user_id, goal_id, trigger_key)
        );
        CREATE INDEX narrative_beats_user ON narrative_beats (user_id, created_at DESC);
        CREATE TABLE quest_unlocks (
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            quest_key text NOT NULL,
            title text NOT NULL,
            description text NOT NULL DEFAULT '',
            unlocked_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (user_id, quest_key)
        );
        CREATE TABLE insights (
            id uuid PRIMARY KEY,
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            week text NOT NULL,
            text text NOT NULL,
            dci double precision NOT NULL,
            stats jsonb NOT NULL DEFAULT '{}'::jsonb,
            highlight_reel jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (user_id, week)
        );
        CREATE TABLE nudges (
            id uuid PRIMARY KEY,
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            channel text NOT NULL CHECK (channel IN ('in_app', 'email', 'sms')),
            message text NOT NULL,
            send_at timestamptz NOT NULL,
            status text NOT NULL DEFAULT 'scheduled'
                CHECK (status IN ('scheduled', 'sent', 'cancelled', 'failed')),
            sequence_index integer NOT NULL CHECK (sequence_index BETWEEN 1 AND 3),
            streak_start date NOT NULL,
            idempotency_key text NOT NULL UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now(),
            sent_at timestamptz
        );
        CREATE INDEX nudges_user ON nudges (user_id, created_at DESC);
        CREATE INDEX nudges_due ON nudges (send_at) WHERE status = 'scheduled';
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE nudges, insights, quest_unlocks, narrative_beats CASCADE")
