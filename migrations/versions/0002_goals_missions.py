"""Goals, milestones, missions, background runs and notifications.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE goals (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            title text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
            description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 2000),
            value_category text NOT NULL
                CHECK (value_category IN ('health', 'craft', 'growth', 'connection')),
            target_date date,
            status text NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'paused', 'completed', 'archived')),
            emotional_driver text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX goals_user_status ON goals (user_id, status, created_at DESC);
        CREATE TABLE milestones (
            id uuid PRIMARY KEY,
            goal_id uuid NOT NULL REFERENCES goals(id) ON DELETE CASCADE,
            title text NOT NULL,
            description text NOT NULL DEFAULT '',
            sequence integer NOT NULL CHECK (sequence >= 1),
            target_date date,
            UNIQUE (goal_id, sequence)
        );
        CREATE TABLE missions (
            id uuid PRIMARY KEY,
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            goal_id uuid REFERENCES goals(id) ON DELETE CASCADE,
            milestone_id uuid REFERENCES milestones(id) ON DELETE SET NULL,
            title text NOT NULL,
            description text NOT NULL DEFAULT '',
            estimated_minutes integer NOT NULL CHECK (estimated_minutes BETWEEN 5 AND 120),
            energy_level text NOT NULL CHECK (energy_level IN ('low', 'medium', 'high')),
            value_category text,
            priority_score double precision NOT NULL DEFAULT 0,
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'in_progress', 'completed', 'deferred', 'archived')),
            kind text NOT NULL DEFAULT 'regular'
                CHECK (kind IN ('regular', 'self_care', 'challenge', 'celebration', 'quest')),
            first_step text,
            created_at timestamptz NOT NULL DEFAULT now(),
            started_at timestamptz,
            completed_at timestamptz
        );
        CREATE INDEX missions_user_status ON missions (user_id, status, priority_score DESC);
        CREATE INDEX missions_goal ON missions (goal_id);
        ALTER TABLE progress_events
            ADD CONSTRAINT progress_events_mission FOREIGN KEY (mission_id)
                REFERENCES missions(id) ON DELETE SET NULL,
            ADD CONSTRAINT progress_events_goal FOREIGN KEY (goal_id)
                REFERENCES goals(id) ON DELETE SET NULL;
        CREATE TABLE runs (
            id uuid PRIMARY KEY,
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            workflow text NOT NULL,
            thread_id text NOT NULL,
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
            input jsonb NOT NULL DEFAULT '{}'::jsonb,
            result jsonb,
            error text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX runs_user ON runs (user_id, created_at DESC);
        CREATE TABLE notifications (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            kind text NOT NULL,
            title text NOT NULL,
            body text NOT NULL DEFAULT '',
            data jsonb NOT NULL DEFAULT '{}'::jsonb,
            dedupe_key text UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now(),
            read_at timestamptz
        );
        CREATE INDEX notifications_user ON notifications (user_id, created_at DESC);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE notifications, runs CASCADE;
        ALTER TABLE progress_events DROP CONSTRAINT progress_events_mission,
            DROP CONSTRAINT progress_events_goal;
        DROP TABLE missions, milestones, goals CASCADE;
        """
    )
