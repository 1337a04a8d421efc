"""The flash-crowd engine: a drop's purchases decided in Redis, written in batches.

With Redis configured (``DROPLINE_REDIS_URL``) on PostgreSQL, ``POST /api/v1/drops/{id}/purchase``
and ``.../admission`` are served here instead of by the database path (``drops.flows``); the
rules are the same and one scenario table (tests/drops/test_purchase_rules.py) runs against
both. Without Redis, or on SQLite, the engine is off and the database path serves everything.

    lane          the ASGI fast lane in front of FastAPI (uses the HTTP floor's validation
                  problems)
    wiring        the engine of an app: built from its state, and the hooks the drop routes call
                  (holds placed and closed, drops rescheduled, admissions); it hands the engine
                  the orders API's ``order_read``, so, like the lane, it sits at the web level

The other modules know neither the HTTP floor nor any endpoint module.
    purchase      one purchase: session, admission token, the gate's verdict, the batch writer
    admission     admission tokens for a crowd, a transaction per batch
    worker_state  what a worker's purchases share: the gates, the coalescers, short caches
    gate          the Redis gate: the drop's hot state and the Lua script that decides a take
    redis_pipe    the gate's pipelined Redis connection
    coalesce      many concurrent calls served by one call with all the items
    writer        the batch writer: many orders per PostgreSQL transaction

PostgreSQL stays the source of truth: the writer's guarded statements refuse what the rows
cannot give, and the gate's keys are rebuilt from PostgreSQL (``gate.reconcile``) when they are
missing or disagree.
"""
