"""Foundation: users, threads, chat messages, memories (pgvector), progress events, LLM usage.

Revision ID: 0001
Revises:
"""

from alembic import op

from core.settings import get_settings

revision = "0001"
down_revision = None


def upgrade() -> None:
    dim = get_settings().embedding_dim
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute(
        """
        CREATE TABLE users (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            subject text NOT NULL UNIQUE,
            display_name text,
            timezone text NOT NULL DEFAULT 'UTC',
            preferences jsonb NOT NULL DEFAULT '{}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE threads (
            id text PRIMARY KEY,
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX threads_user_recent ON threads (user_id, updated_at DESC);
        CREATE TABLE chat_messages (
            id text PRIMARY KEY,
            thread_id text NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
            role text NOT NULL CHECK (role IN ('user', 'assistant')),
            content text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp()
        );
        CREATE INDEX chat_messages_thread ON chat_messages (thread_id, created_at);
        CREATE TABLE progress_events (
            id bigserial PRIMARY KEY,
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            kind text NOT NULL CHECK (kind IN ('mission_completed', 'mission_skipped', 'session',
                'nudge_sent', 'nudge_acted', 'chat')),
            mission_id uuid,
            goal_id uuid,
            minutes integer CHECK (minutes IS NULL OR minutes >= 0),
            at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX progress_events_user_at ON progress_events (user_id, at DESC);
        CREATE TABLE llm_usage (
            id bigserial PRIMARY KEY,
            user_id uuid REFERENCES users(id) ON DELETE SET NULL,
            site text NOT NULL,
            model text NOT NULL,
            input_tokens integer NOT NULL,
            output_tokens integer NOT NULL,
            cost_usd numeric(14, 8) NOT NULL,
            at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX llm_usage_user_at ON llm_usage (user_id, at DESC);
        """
    )
    # The memory table is shaped for langchain-postgres' PGVectorStore: id/content/embedding,
    # JSON metadata, plus real columns for what queries filter and rank on.
    op.execute(
        f"""
        CREATE TABLE memories (
            id uuid PRIMARY KEY,
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            tier text NOT NULL CHECK (tier IN ('personal', 'project', 'task')),
            content text NOT NULL,
            embedding vector({dim}) NOT NULL,
            embedder text NOT NULL,
            metadata jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            accessed_at timestamptz NOT NULL DEFAULT now(),
            access_count integer NOT NULL DEFAULT 0,
            expires_at timestamptz
        );
        CREATE INDEX memories_user_tier ON memories (user_id, tier, created_at DESC);
        CREATE INDEX memories_expiry ON memories (expires_at) WHERE expires_at IS NOT NULL;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE memories, llm_usage, progress_events, chat_messages, threads, users CASCADE")
