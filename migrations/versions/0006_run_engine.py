"""The run engine: a run is a durable row with LangGraph Platform's semantics (status, multitask
strategy, attempt, a lease held by one process), threads carry the Agent Server's fields and a
status that follows from their runs, transcript messages carry a status, nudges are claimed
before they are sent.

Two functions do what must happen atomically under the thread's row lock, in one round trip:
`delight_submit_run` (admission, multitask strategy, insert, start-or-queue) and
`delight_finish_run` (record the outcome, hand the thread to its next pending run). Every
submit and finish of one thread takes turns on that lock, so a pending run can never be left
behind by a finish that did not see it.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE threads
            ALTER COLUMN user_id DROP NOT NULL,
            ADD COLUMN graph_id text,
            ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
            ADD COLUMN status text NOT NULL DEFAULT 'idle'
                CHECK (status IN ('idle', 'busy', 'interrupted', 'error'));
        -- Until now only chat created thread rows.
        UPDATE threads SET graph_id = 'chat';
        INSERT INTO threads (id, user_id, graph_id)
            SELECT DISTINCT ON (thread_id) thread_id, user_id, workflow FROM runs
            ON CONFLICT (id) DO NOTHING;

        ALTER TABLE runs DROP CONSTRAINT runs_status_check;
        ALTER TABLE runs RENAME COLUMN result TO output;
        ALTER TABLE runs
            ALTER COLUMN user_id DROP NOT NULL,
            ADD COLUMN multitask_strategy text NOT NULL DEFAULT 'enqueue'
                CHECK (multitask_strategy IN ('reject', 'enqueue', 'interrupt', 'rollback')),
            ADD COLUMN queue text NOT NULL DEFAULT 'api' CHECK (queue IN ('api', 'worker')),
            ADD COLUMN kwargs jsonb NOT NULL DEFAULT '{}'::jsonb,
            ADD COLUMN context jsonb NOT NULL DEFAULT '{}'::jsonb,
            ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
            ADD COLUMN attempt integer NOT NULL DEFAULT 0,
            ADD COLUMN started_at timestamptz,
            ADD COLUMN ended_at timestamptz,
            ADD COLUMN owner text,
            ADD COLUMN lease_until timestamptz,
            ADD COLUMN cancel text CHECK (cancel IN ('interrupt', 'rollback')),
            ADD COLUMN watchers text[] NOT NULL DEFAULT '{}',
            ADD COLUMN error_type text,
            ADD COLUMN events text;
        -- Runs recorded before the engine were background runs; unfinished ones resume.
        UPDATE runs SET queue = 'worker', status = CASE status
            WHEN 'succeeded' THEN 'success' WHEN 'failed' THEN 'error' ELSE 'pending' END;
        ALTER TABLE runs ADD CONSTRAINT runs_status_check
            CHECK (status IN ('pending', 'running', 'success', 'error', 'timeout', 'interrupted'));
        ALTER TABLE runs ADD CONSTRAINT runs_thread
            FOREIGN KEY (thread_id) REFERENCES threads(id) ON DELETE CASCADE;
        -- The invariant everything else leans on: one running run per thread, in any process.
        CREATE UNIQUE INDEX runs_one_running_per_thread ON runs (thread_id) WHERE status = 'running';
        CREATE INDEX runs_pending ON runs (created_at) WHERE status = 'pending';
        CREATE INDEX runs_thread_recent ON runs (thread_id, created_at DESC);
        CREATE INDEX runs_lease ON runs (lease_until) WHERE status = 'running';
        CREATE INDEX runs_user_pending ON runs (user_id) WHERE status = 'pending';

        ALTER TABLE chat_messages
            ADD COLUMN status text NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'failed', 'interrupted'));

        ALTER TABLE nudges DROP CONSTRAINT nudges_status_check;
        ALTER TABLE nudges ADD CONSTRAINT nudges_status_check
            CHECK (status IN ('scheduled', 'sending', 'sent', 'cancelled', 'failed'));
        ALTER TABLE nudges ADD COLUMN claimed_at timestamptz;
        """
    )
    op.execute(
        """
        CREATE FUNCTION delight_tell_watchers(p_run_id uuid, p_watchers text[], p_except text)
        RETURNS void LANGUAGE plpgsql AS $fn$
        DECLARE
            w text;
        BEGIN
            FOREACH w IN ARRAY p_watchers LOOP
                IF w IS DISTINCT FROM p_except THEN
                    PERFORM pg_notify('dl_' || w, json_build_object('op', 'end', 'run', p_run_id)::text);
                END IF;
            END LOOP;
        END
        $fn$;

        -- A thread's status follows from its runs: busy while one is pending or running, else
        -- what its last one left (`p_ended`: error and timeout are `error`; NULL is `idle`).
        CREATE FUNCTION delight_settle_thread(p_thread text, p_ended text) RETURNS void
        LANGUAGE sql AS $fn$
            UPDATE threads SET updated_at = now(), status = CASE
                    WHEN EXISTS (SELECT 1 FROM runs WHERE thread_id = p_thread
                                 AND status IN ('pending', 'running')) THEN 'busy'
                    WHEN p_ended IN ('error', 'timeout') THEN 'error'
                    WHEN p_ended = 'interrupted' THEN 'interrupted'
                    ELSE 'idle' END
                WHERE id = p_thread;
        $fn$;

        CREATE FUNCTION delight_submit_run(
            p_run_id uuid, p_thread_id text, p_user_id uuid, p_workflow text, p_queue text,
            p_input jsonb, p_kwargs jsonb, p_context jsonb, p_metadata jsonb, p_thread_metadata jsonb,
            p_strategy text, p_create_thread boolean, p_owner text, p_lease_s double precision,
            p_admit boolean, p_max_pending_thread integer, p_max_pending_user integer,
            p_rate_per_minute integer, p_budget_usd double precision, p_spend_since timestamptz
        ) RETURNS jsonb LANGUAGE plpgsql AS $fn$
        DECLARE
            t threads%ROWTYPE;
            r runs%ROWTYPE;
            dropped runs%ROWTYPE;
            stopping runs%ROWTYPE;
            n_running integer;
            n_pending integer;
            n integer;
            oldest timestamptz;
            v_status text;
            v_context jsonb := p_context;
            spent double precision := 0;
        BEGIN
            -- A run id that exists (the deterministic ids of jobs) is reported, never doubled.
            SELECT * INTO r FROM runs WHERE id = p_run_id;
            IF FOUND THEN
                IF r.user_id IS DISTINCT FROM p_user_id THEN
                    RETURN jsonb_build_object('outcome', 'not_found');
                END IF;
                RETURN jsonb_build_object('outcome', 'exists', 'run', to_jsonb(r) - 'events');
            END IF;
            -- Submits and finishes of one thread take turns on its row.
            SELECT * INTO t FROM threads WHERE id = p_thread_id FOR UPDATE;
            IF FOUND THEN
                IF t.user_id IS DISTINCT FROM p_user_id THEN
                    RETURN jsonb_build_object('outcome', 'not_found');
                END IF;
            ELSIF NOT p_create_thread THEN
                RETURN jsonb_build_object('outcome', 'not_found');
            END IF;
            SELECT count(*) FILTER (WHERE status = 'running'), count(*) FILTER (WHERE status = 'pending')
                INTO n_running, n_pending
                FROM runs WHERE thread_id = p_thread_id AND status IN ('pending', 'running');
            IF p_strategy = 'reject' AND n_running + n_pending > 0 THEN
                RETURN jsonb_build_object('outcome', 'busy');
            END IF;
            IF p_admit THEN  -- requests of users; the service's own runs are not limited
                IF p_strategy NOT IN ('interrupt', 'rollback') AND n_pending >= p_max_pending_thread THEN
                    RETURN jsonb_build_object('outcome', 'thread_full', 'retry_after', 2);
                END IF;
                SELECT count(*) INTO n FROM runs WHERE user_id = p_user_id AND status = 'pending';
                IF n >= p_max_pending_user THEN
                    RETURN jsonb_build_object('outcome', 'user_full', 'retry_after', 2);
                END IF;
                IF p_rate_per_minute > 0 THEN
                    SELECT count(*), min(created_at) INTO n, oldest FROM runs
                        WHERE user_id = p_user_id AND created_at > now() - interval '1 minute';
                    IF n >= p_rate_per_minute THEN
                        RETURN jsonb_build_object('outcome', 'rate_limited', 'retry_after',
                            greatest(1, ceil(60 - extract(epoch FROM now() - oldest))));
                    END IF;
                END IF;
            END IF;
            -- The user's model spend today (their local day): past the budget, the run's model
            -- calls take the free path (services/llm/gateway.py).
            IF p_budget_usd > 0 AND p_user_id IS NOT NULL THEN
                SELECT coalesce(sum(cost_usd), 0) INTO spent FROM llm_usage
                    WHERE user_id = p_user_id AND at >= p_spend_since;
                IF spent >= p_budget_usd THEN
                    v_context := v_context || '{"over_budget": true}';
                END IF;
            END IF;
            IF t.id IS NULL THEN
                INSERT INTO threads (id, user_id, graph_id, metadata, status)
                    VALUES (p_thread_id, p_user_id, p_workflow, coalesce(p_thread_metadata, '{}'), 'busy');
            ELSE
                UPDATE threads SET status = 'busy', updated_at = now(),
                        graph_id = coalesce(graph_id, p_workflow)
                    WHERE id = p_thread_id;
            END IF;
            IF p_strategy IN ('interrupt', 'rollback') AND n_running + n_pending > 0 THEN
                -- Queued runs are dropped; the running one is asked to stop (its owner hears it now,
                -- or reads `cancel` at its next heartbeat).
                FOR dropped IN SELECT * FROM runs WHERE thread_id = p_thread_id AND status = 'pending' LOOP
                    IF p_strategy = 'rollback' THEN
                        DELETE FROM runs WHERE id = dropped.id;
                    ELSE
                        UPDATE runs SET status = 'interrupted', ended_at = now(), updated_at = now(),
                                error = 'superseded by run ' || p_run_id
                            WHERE id = dropped.id;
                    END IF;
                    PERFORM delight_tell_watchers(dropped.id, dropped.watchers, NULL);
                END LOOP;
                UPDATE runs SET cancel = p_strategy
                    WHERE thread_id = p_thread_id AND status = 'running' RETURNING * INTO stopping;
                IF stopping.owner IS NOT NULL THEN
                    PERFORM pg_notify('dl_' || stopping.owner, json_build_object(
                        'op', 'cancel', 'run', stopping.id, 'action', p_strategy)::text);
                END IF;
                n_pending := 0;
            END IF;
            v_status := CASE WHEN n_running + n_pending = 0 AND p_owner IS NOT NULL
                THEN 'running' ELSE 'pending' END;
            INSERT INTO runs (id, user_id, workflow, thread_id, status, input, kwargs, context, metadata,
                              multitask_strategy, queue, owner, lease_until, started_at, attempt)
                VALUES (p_run_id, p_user_id, p_workflow, p_thread_id, v_status, coalesce(p_input, '{}'),
                        p_kwargs, v_context, p_metadata, p_strategy, p_queue,
                        CASE WHEN v_status = 'running' THEN p_owner END,
                        CASE WHEN v_status = 'running' THEN now() + make_interval(secs => p_lease_s) END,
                        CASE WHEN v_status = 'running' THEN now() END,
                        CASE WHEN v_status = 'running' THEN 1 ELSE 0 END)
                RETURNING * INTO r;
            IF v_status = 'pending' AND n_running + n_pending = 0 THEN
                -- Runnable now but not started here: any process serving its queue may take it.
                PERFORM pg_notify('dl_all', '{"op": "wake"}');
            END IF;
            RETURN jsonb_build_object('outcome', 'created', 'run', to_jsonb(r) - 'events', 'spent', spent);
        END
        $fn$;

        CREATE FUNCTION delight_finish_run(
            p_run_id uuid, p_owner text, p_status text, p_output jsonb, p_error text, p_error_type text,
            p_events text, p_thread_status text, p_claim_next boolean, p_queues text[],
            p_lease_s double precision
        ) RETURNS jsonb LANGUAGE plpgsql AS $fn$
        -- p_status: success | error | timeout | interrupted, or 'rollback' (the run is deleted)
        -- or 'pending' (released for another process to resume).
        DECLARE
            r runs%ROWTYPE;
            head runs%ROWTYPE;
            nxt runs%ROWTYPE;
            v_thread text;
        BEGIN
            SELECT thread_id INTO v_thread FROM runs WHERE id = p_run_id;
            IF NOT FOUND THEN
                RETURN jsonb_build_object('outcome', 'gone');
            END IF;
            PERFORM 1 FROM threads WHERE id = v_thread FOR UPDATE;
            SELECT * INTO r FROM runs
                WHERE id = p_run_id AND status = 'running' AND owner IS NOT DISTINCT FROM p_owner
                FOR UPDATE;  -- a watcher being added waits, so it is told the end below or sees it
            IF NOT FOUND THEN  -- its lease was taken over: the new holder settles it
                RETURN jsonb_build_object('outcome', 'lost');
            END IF;
            IF p_status = 'rollback' THEN
                DELETE FROM runs WHERE id = p_run_id;
            ELSIF p_status = 'pending' THEN
                UPDATE runs SET status = 'pending', owner = NULL, lease_until = NULL, updated_at = now()
                    WHERE id = p_run_id;
            ELSE
                UPDATE runs SET status = p_status, output = p_output, error = p_error,
                        error_type = p_error_type, events = p_events, ended_at = now(),
                        updated_at = now(), lease_until = NULL, cancel = NULL
                    WHERE id = p_run_id;
            END IF;
            -- The thread's oldest pending run goes next, here if this process serves its queue.
            SELECT * INTO head FROM runs WHERE thread_id = v_thread AND status = 'pending'
                ORDER BY created_at, id LIMIT 1;
            IF p_claim_next AND head.queue = ANY(p_queues) THEN
                UPDATE runs SET status = 'running', owner = p_owner, started_at = now(), updated_at = now(),
                        lease_until = now() + make_interval(secs => p_lease_s), attempt = attempt + 1
                    WHERE id = head.id AND status = 'pending'
                    RETURNING * INTO nxt;
            END IF;
            IF nxt.id IS NULL
               AND EXISTS (SELECT 1 FROM runs WHERE thread_id = v_thread AND status = 'pending') THEN
                PERFORM pg_notify('dl_all', '{"op": "wake"}');
            END IF;
            PERFORM delight_settle_thread(
                v_thread, CASE WHEN p_status = 'success' THEN p_thread_status ELSE p_status END);
            -- Watchers in other processes learn the end when this commits (its events went first).
            PERFORM delight_tell_watchers(p_run_id, r.watchers, p_owner);
            RETURN jsonb_build_object('outcome', 'done',
                'next', CASE WHEN nxt.id IS NULL THEN NULL ELSE to_jsonb(nxt) - 'events' END);
        END
        $fn$;

        CREATE FUNCTION delight_cancel_run(p_run_id uuid, p_action text) RETURNS jsonb
        LANGUAGE plpgsql AS $fn$
        -- A pending run ends here; a running one is asked to stop by its owner.
        DECLARE
            r runs%ROWTYPE;
            v_thread text;
        BEGIN
            SELECT thread_id INTO v_thread FROM runs WHERE id = p_run_id;
            IF NOT FOUND THEN
                RETURN jsonb_build_object('outcome', 'gone');
            END IF;
            PERFORM 1 FROM threads WHERE id = v_thread FOR UPDATE;
            SELECT * INTO r FROM runs WHERE id = p_run_id FOR UPDATE;
            IF r.status = 'pending' THEN
                IF p_action = 'rollback' THEN
                    DELETE FROM runs WHERE id = p_run_id;
                ELSE
                    UPDATE runs SET status = 'interrupted', ended_at = now(), updated_at = now(),
                            error = 'cancelled before it started'
                        WHERE id = p_run_id;
                END IF;
                PERFORM delight_settle_thread(
                    v_thread, CASE WHEN p_action = 'interrupt' THEN 'interrupted' END);
                PERFORM delight_tell_watchers(p_run_id, r.watchers, NULL);
                RETURN jsonb_build_object('outcome', 'cancelled', 'status', r.status);
            ELSIF r.status = 'running' THEN
                UPDATE runs SET cancel = p_action WHERE id = p_run_id;
                IF r.owner IS NOT NULL THEN
                    PERFORM pg_notify('dl_' || r.owner, json_build_object(
                        'op', 'cancel', 'run', p_run_id, 'action', p_action)::text);
                END IF;
                RETURN jsonb_build_object('outcome', 'stopping', 'status', r.status);
            END IF;
            RETURN jsonb_build_object('outcome', 'finished', 'status', r.status);
        END
        $fn$;

        CREATE FUNCTION delight_watch_run(p_run_id uuid, p_proc text, p_after integer) RETURNS jsonb
        LANGUAGE plpgsql AS $fn$
        -- Ask for a run's events in process p_proc: its owner (now, or whoever claims it later,
        -- reading `watchers`) forwards them from p_after on.
        DECLARE
            r runs%ROWTYPE;
        BEGIN
            UPDATE runs SET watchers = CASE WHEN p_proc = ANY(watchers) THEN watchers
                                            ELSE array_append(watchers, p_proc) END
                WHERE id = p_run_id RETURNING * INTO r;
            IF NOT FOUND THEN
                RETURN NULL;
            END IF;
            IF r.status = 'running' AND r.owner IS NOT NULL AND r.owner <> p_proc THEN
                PERFORM pg_notify('dl_' || r.owner, json_build_object(
                    'op', 'watch', 'run', p_run_id, 'proc', p_proc, 'after', p_after)::text);
            END IF;
            RETURN to_jsonb(r);
        END
        $fn$;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP FUNCTION delight_submit_run, delight_finish_run, delight_cancel_run, delight_watch_run,
            delight_tell_watchers, delight_settle_thread;
        ALTER TABLE nudges DROP COLUMN claimed_at, DROP CONSTRAINT nudges_status_check;
        UPDATE nudges SET status = 'scheduled' WHERE status = 'sending';
        ALTER TABLE nudges ADD CONSTRAINT nudges_status_check
            CHECK (status IN ('scheduled', 'sent', 'cancelled', 'failed'));
        ALTER TABLE chat_messages DROP COLUMN status;
        DROP INDEX runs_one_running_per_thread, runs_pending, runs_thread_recent, runs_lease,
            runs_user_pending;
        ALTER TABLE runs DROP CONSTRAINT runs_thread, DROP CONSTRAINT runs_status_check;
        DELETE FROM runs WHERE user_id IS NULL;
        UPDATE runs SET status = CASE status WHEN 'success' THEN 'succeeded'
            WHEN 'pending' THEN 'pending' WHEN 'running' THEN 'running' ELSE 'failed' END;
        ALTER TABLE runs DROP COLUMN multitask_strategy, DROP COLUMN queue, DROP COLUMN kwargs,
            DROP COLUMN context, DROP COLUMN metadata, DROP COLUMN attempt, DROP COLUMN started_at,
            DROP COLUMN ended_at, DROP COLUMN owner, DROP COLUMN lease_until, DROP COLUMN cancel,
            DROP COLUMN watchers, DROP COLUMN error_type, DROP COLUMN events,
            ALTER COLUMN user_id SET NOT NULL;
        ALTER TABLE runs RENAME COLUMN output TO result;
        ALTER TABLE runs ADD CONSTRAINT runs_status_check
            CHECK (status IN ('pending', 'running', 'succeeded', 'failed'));
        DELETE FROM threads WHERE user_id IS NULL;
        ALTER TABLE threads DROP COLUMN graph_id, DROP COLUMN metadata, DROP COLUMN status,
            ALTER COLUMN user_id SET NOT NULL;
        """
    )
