-- pgbench's side of the deposit benchmark: the same statement shape as
-- tally's append (server/lib/store.c): one event, its outbox row and the
-- operation row in one INSERT with data-modifying CTEs, on the same tables
-- and indexes. Run with -M prepared -D tenant=<uuid>.
WITH ev AS (
    INSERT INTO events (event_id, tenant_id, aggregate_type, aggregate_id, version, event_type,
                        event_version, data, metadata, operation_id, correlation_id)
    VALUES (gen_random_uuid(), :tenant::uuid, 'account', gen_random_uuid(), 1, 'Deposited', 1,
            '{"amount":{"minorUnits":"1","currency":"EUR"}}',
            '{"correlationId":"pgbench","causationId":"pgbench","userId":"pgbench"}',
            gen_random_uuid(), 'pgbench')
    RETURNING global_position, tx_id
), ob AS (
    INSERT INTO outbox (global_position, tx_id, tenant_id)
    SELECT global_position, tx_id, :tenant::uuid FROM ev
), op AS (
    INSERT INTO operations (operation_id, tenant_id, kind, status, aggregate_type, aggregate_id,
                            correlation_id)
    VALUES (gen_random_uuid(), :tenant::uuid, 'Deposit', 'SUCCEEDED', 'account',
            gen_random_uuid(), 'pgbench')
)
SELECT tx_id, global_position FROM ev;
