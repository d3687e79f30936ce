-- 0002: the read model (query tables) that tally-projector maintains and
-- tally-query serves, and what the projector needs around it: checkpoint
-- compare-and-set, dead-letter retries. See DESIGN.md §4-§7.
--
-- The query tables live in their own schema `rm`, so `tally-projector
-- --rebuild` can build a complete copy in schema `rm_rebuild` (with
-- rm_create_tables below) and swap the two schemas by renaming them in one
-- transaction, together with the checkpoint. Consequences for readers:
--  * always name the schema (rm.accounts) or put rm in search_path, and
--    never cache a table's OID across statements (prepared statements made
--    before a swap keep reading the old tables until re-prepared);
--  * nothing outside schema rm may reference these tables (no foreign keys,
--    no views): the swap would leave them pointing at the old copy.
--
-- Consistency: every change of these tables is made by the projector in the
-- same transaction that advances projector_checkpoints row 'rm' (its
-- position = (tx_id, global_position) of the last event applied). So a
-- reader that sees checkpoint P sees exactly the events up to P, in log
-- order; `min_position` on reads compares the caller's position with it.
-- The tables are a pure function of the log: no now(), no sequences (a
-- --rebuild gives identical rows).
--
-- Timestamps are the events' recorded_at (the writing transaction's time).
--
-- Operation status (GetOperation) is not here: public.operations (0001) is
-- written by every command in its own transaction and finished by the
-- transfer saga, so it is current without waiting for the projector.

-- The read model's DDL lives in ONE place, this function, so the live schema
-- (created below) and every rebuild's schema get exactly the same tables
-- and index names. A later migration that changes the read model must also
-- CREATE OR REPLACE this function (then --rebuild, or migrate the live
-- tables alike).
CREATE FUNCTION rm_create_tables(target name) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format('CREATE SCHEMA %I', target);
    -- One row per account: its current state.
    --   status:    'OPEN' | 'FROZEN' | 'CLOSED' (AccountStatus without prefix)
    --   balance:   minor units of currency, >= -overdraft_limit when written by
    --              commands (the read model does not re-check business limits)
    --   version:   the account stream's version this row includes
    --   opened_at: recorded_at of AccountOpened; updated_at: of the last event
    -- ListAccounts pages by (opened_at, account_id) within a tenant, optionally
    -- filtered by status, owner or currency (one index per filter, each ending in
    -- the paging key, so a filtered page is an index range scan).
    EXECUTE format($ddl$
    CREATE TABLE %1$I.accounts (
        tenant_id        uuid NOT NULL,
        account_id       uuid NOT NULL,
        owner            text NOT NULL,
        currency         text NOT NULL,
        status           text NOT NULL CHECK (status IN ('OPEN', 'FROZEN', 'CLOSED')),
        balance          bigint NOT NULL,
        overdraft_limit  bigint NOT NULL,
        version          bigint NOT NULL,
        opened_at        timestamptz NOT NULL,
        updated_at       timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, account_id)
    )
    $ddl$, target);

    EXECUTE format($ddl$
    CREATE INDEX accounts_page ON %1$I.accounts (tenant_id, opened_at, account_id)
    $ddl$, target);

    EXECUTE format($ddl$
    CREATE INDEX accounts_status_page ON %1$I.accounts (tenant_id, status, opened_at, account_id)
    $ddl$, target);

    EXECUTE format($ddl$
    CREATE INDEX accounts_owner_page ON %1$I.accounts (tenant_id, owner, opened_at, account_id)
    $ddl$, target);

    EXECUTE format($ddl$
    CREATE INDEX accounts_currency_page ON %1$I.accounts (tenant_id, currency, opened_at, account_id)
    $ddl$, target);

    -- The ledger: one line per balance change of an account (Deposited,
    -- Withdrawn, TransferDebited, TransferCredited, TransferDebitReversed,
    -- PaymentMade, PaymentRefunded); status events make no line.
    --   version:  the account stream version of the event (unique per account)
    --   kind:     'DEPOSIT' | 'WITHDRAWAL' | 'TRANSFER_OUT' | 'TRANSFER_IN' |
    --             'TRANSFER_REVERSAL' | 'PAYMENT' | 'REFUND' (EntryKind without
    --             prefix)
    --   amount:   signed, minor units of currency (negative = money out)
    --   balance_after: the account's balance after this line
    --   counterpart_account_id: the other account of a transfer (else NULL)
    --   transfer_id / payment_id: set for transfer / payment kinds
    --   reference: DEPOSIT, WITHDRAWAL: the caller's reference; PAYMENT: the
    --             merchant reference; REFUND: the payment id; TRANSFER_*: the
    --             transfer id
    --   operation_id, correlation_id: of the event (the command or saga step
    --             that wrote it, and its business flow)
    --   (tx_id, global_position): the event's Position
    -- ListEntries pages by version (forwards/backwards) or by time.
    EXECUTE format($ddl$
    CREATE TABLE %1$I.entries (
        tenant_id               uuid NOT NULL,
        account_id              uuid NOT NULL,
        version                 bigint NOT NULL,
        kind                    text NOT NULL CHECK (kind IN ('DEPOSIT', 'WITHDRAWAL', 'TRANSFER_OUT',
                                    'TRANSFER_IN', 'TRANSFER_REVERSAL', 'PAYMENT', 'REFUND')),
        amount                  bigint NOT NULL,
        currency                text NOT NULL,
        balance_after           bigint NOT NULL,
        counterpart_account_id  uuid,
        transfer_id             uuid,
        payment_id              uuid,
        reference               text NOT NULL,
        operation_id            uuid NOT NULL,
        correlation_id          text NOT NULL,
        recorded_at             timestamptz NOT NULL,
        tx_id                   xid8 NOT NULL,
        global_position         bigint NOT NULL,
        PRIMARY KEY (tenant_id, account_id, version)
    )
    $ddl$, target);

    EXECUTE format($ddl$
    CREATE INDEX entries_time ON %1$I.entries (tenant_id, account_id, recorded_at, version)
    $ddl$, target);

    -- One row per transfer: where its saga is. Every transfer event (the
    -- transfer stream's TransferRequested / TransferCompleted / TransferFailed and
    -- the account streams' TransferDebited / TransferCredited /
    -- TransferDebitReversed) fills its own columns, so the row is the same
    -- whatever order they are applied in; state and status are derived:
    --   state:  'REQUESTED' -> 'DEBITED' -> 'COMPLETED', or
    --           'REQUESTED' -> 'FAILED' (debit refused, compensated false), or
    --           'REQUESTED' -> 'DEBITED' -> 'REVERSED' -> 'FAILED' (credit
    --           refused, debit reversed, compensated true)
    --           (TransferState without prefix; a credited transfer that is not
    --           completed yet is still 'DEBITED', credited_at tells)
    --   status: 'PENDING' | 'SUCCEEDED' | 'FAILED' (OperationStatus)
    --   operation_id, correlation_id: of the Transfer command (its operation row
    --           in public.operations is finished by the saga)
    --   source/destination/amount/currency/reference/requested_at: from
    --           TransferRequested (NULL only while it is not applied)
    EXECUTE format($ddl$
    CREATE TABLE %1$I.transfers (
        tenant_id               uuid NOT NULL,
        transfer_id             uuid NOT NULL,
        source_account_id       uuid,
        destination_account_id  uuid,
        amount                  bigint,
        currency                text,
        reference               text,
        operation_id            uuid,
        correlation_id          text,
        requested_at            timestamptz,
        debited_at              timestamptz,
        credited_at             timestamptz,
        reversed_at             timestamptz,
        completed_at            timestamptz,
        failed_at               timestamptz,
        failure_reason          text,
        compensated             boolean,
        updated_at              timestamptz NOT NULL,
        state                   text NOT NULL GENERATED ALWAYS AS (
            CASE WHEN failed_at IS NOT NULL THEN 'FAILED'
                 WHEN completed_at IS NOT NULL THEN 'COMPLETED'
                 WHEN reversed_at IS NOT NULL THEN 'REVERSED'
                 WHEN debited_at IS NOT NULL THEN 'DEBITED'
                 ELSE 'REQUESTED' END) STORED,
        status                  text NOT NULL GENERATED ALWAYS AS (
            CASE WHEN failed_at IS NOT NULL THEN 'FAILED'
                 WHEN completed_at IS NOT NULL THEN 'SUCCEEDED'
                 ELSE 'PENDING' END) STORED,
        PRIMARY KEY (tenant_id, transfer_id)
    )
    $ddl$, target);

    -- Per-tenant daily usage: events and volume per UTC day, event type and
    -- currency. currency is '' for the events without an amount
    -- (AccountOpened, AccountFrozen, AccountUnfrozen, AccountClosed,
    -- TransferCompleted, TransferFailed); volume is the sum of the events'
    -- (positive) amounts in minor units. A day's count for an event type is
    -- the sum over its currencies.
    EXECUTE format($ddl$
    CREATE TABLE %1$I.usage_daily (
        tenant_id    uuid NOT NULL,
        day          date NOT NULL,
        event_type   text NOT NULL,
        currency     text NOT NULL,
        event_count  bigint NOT NULL,
        volume       numeric NOT NULL,
        PRIMARY KEY (tenant_id, day, event_type, currency)
    )
    $ddl$, target);
END
$fn$;

SELECT rm_create_tables('rm');

-- ---- projector bookkeeping (schema public: survives a rebuild swap) ----

-- Checkpoints: 'rm' = the read model above, 'saga' = the transfer saga,
-- 'rm_rebuild' = a --rebuild in progress (deleted when it swaps).
-- epoch: bumped when a rebuild swaps in new tables, so a projector that
-- loaded its state (checkpoint, dead letters) before the swap loses its next
-- compare-and-set even at the same position, and reloads.
ALTER TABLE projector_checkpoints ADD COLUMN epoch bigint NOT NULL DEFAULT 0;
INSERT INTO projector_checkpoints (name) VALUES ('rm'), ('saga') ON CONFLICT DO NOTHING;

-- Advances checkpoint `cp_name` from (old_tx, old_pos) to (new_tx, new_pos),
-- or raises SQLSTATE 'TLCAS' when the stored value is not (cp_epoch, old_tx,
-- old_pos): another projector moved it, or a rebuild swapped. The error
-- aborts the projector's batch transaction, so its read-model writes roll
-- back with it.
CREATE FUNCTION projector_checkpoint_cas(cp_name text, cp_epoch bigint, old_tx xid8,
                                         old_pos bigint, new_tx xid8, new_pos bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE projector_checkpoints
       SET tx_id = new_tx, global_position = new_pos, updated_at = now()
     WHERE name = cp_name AND epoch = cp_epoch AND tx_id = old_tx
       AND global_position = old_pos;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'checkpoint % moved (expected %/% in epoch %)',
            cp_name, old_tx, old_pos, cp_epoch USING ERRCODE = 'TLCAS';
    END IF;
END $$;

-- Dead letters (table in 0001). A row is either the event that failed
-- `attempts` times (queued_behind NULL), or a later event of the same
-- aggregate parked behind it (queued_behind = the failed row's id, attempts
-- 0): the projection skips them until the failed one is resolved, then applies
-- them in log order. For projection 'saga' the aggregate is the transfer.
-- `tally-admin dead-letters retry` sets retry_requested_at on every
-- unresolved row of the aggregate; the projector then retries the chain in
-- order and sets resolved_at on each row it applies (a row that fails again
-- gets attempts + 1, a new error, and retry_requested_at cleared).
ALTER TABLE dead_letters
    ADD COLUMN event_id uuid,
    ADD COLUMN event_type text,
    ADD COLUMN queued_behind bigint REFERENCES dead_letters (id),
    ADD COLUMN retry_requested_at timestamptz,
    ADD COLUMN last_attempt_at timestamptz;
CREATE INDEX dead_letters_open ON dead_letters (projection, tenant_id, aggregate_type,
                                                aggregate_id, tx_id, global_position)
    WHERE resolved_at IS NULL;
CREATE INDEX dead_letters_retry ON dead_letters (projection, id)
    WHERE resolved_at IS NULL AND retry_requested_at IS NOT NULL;
