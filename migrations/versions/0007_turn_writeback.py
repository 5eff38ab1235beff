"""The chat turn's write-back: memories may wait for their vector, usage is one row per turn.

- `memories.embedding` may be NULL: a memory whose embedding failed is stored at once and embedded
  later (recall ignores it until then); a partial index finds a user's waiting rows.
- `llm_usage.turn_key` (unique) keys the one usage row of a chat turn, so a resumed or retried
  write-back writes it once; `calls` is how many model calls a row covers (1 for per-call rows).

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE memories ALTER COLUMN embedding DROP NOT NULL;
        CREATE INDEX memories_unembedded ON memories (user_id) WHERE embedding IS NULL;
        ALTER TABLE llm_usage ADD COLUMN calls integer NOT NULL DEFAULT 1 CHECK (calls >= 0),
                              ADD COLUMN turn_key text;
        CREATE UNIQUE INDEX llm_usage_turn ON llm_usage (turn_key);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX llm_usage_turn;
        ALTER TABLE llm_usage DROP COLUMN turn_key, DROP COLUMN calls;
        DROP INDEX memories_unembedded;
        DELETE FROM memories WHERE embedding IS NULL;
        ALTER TABLE memories ALTER COLUMN embedding SET NOT NULL;
        """
    )
