-- 0003: least privilege. Three NOLOGIN group roles, one per daemon, hold
-- exactly the rights that daemon's SQL needs; operators give each daemon a
-- login that is a member of its group (tally_create_login below). Nothing is
-- granted to PUBLIC. The migrations themselves run as the owner of the
-- tables (tally-admin migrate).
--
--   tally_command    the write side: appends to the log (events, outbox,
--                    operations, idempotency_keys, snapshots), reads them
--                    back to load aggregates and replay idempotent answers,
--                    finishes operations and stores idempotent responses.
--                    No UPDATE or DELETE of events, no read model, no token
--                    administration.
--   tally_query      read only: the write-side tables its RPCs read, the
--                    read model (schema rm), and pg_read_all_stats so
--                    GetProjectionStatus can name another role's open
--                    transaction that holds the commit fence back.
--   tally_projector  everything tally_command has (the transfer saga appends
--                    through the same code), plus: owns schema rm and its
--                    tables (--rebuild creates rm_rebuild and swaps the two
--                    by renaming, which needs ownership and CREATE on the
--                    database), marks and deletes outbox rows, keeps
--                    projector_checkpoints and dead_letters.
--
-- The events table is append-only for everyone: no role is granted UPDATE,
-- DELETE or TRUNCATE on it, and triggers (0001, and TRUNCATE below) refuse
-- those statements even for its owner and superusers.
--
-- Roles belong to the cluster, not the database, so this file may run in
-- many databases of one cluster: a role that already exists is left as it is
-- (whoever created it chose its settings); only its grants in this database
-- are (re)made. Creating the roles needs CREATEROLE (or a superuser); with
-- the roles created beforehand by an administrator, the migrating role
-- needs no CREATEROLE but must be a member of tally_projector (to hand it
-- schema rm).

DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['tally_command', 'tally_query', 'tally_projector'] LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            -- A session of tally's never sits idle inside a transaction (it
            -- would hold the commit fence back for every reader, DESIGN §5):
            -- if one does, end it. Role settings apply to the role a session
            -- logs in as, so tally_create_login copies this to each login.
            EXECUTE format('ALTER ROLE %I SET idle_in_transaction_session_timeout = %L', r,
                           '30s');
            IF r = 'tally_query' THEN
                GRANT pg_read_all_stats TO tally_query;
            ELSIF r = 'tally_projector' THEN
                GRANT tally_command TO tally_projector;
                -- The migrating role hands schema rm over to tally_projector
                -- and sets its default privileges: both need membership.
                IF NOT pg_has_role(current_user, 'tally_projector', 'MEMBER') THEN
                    EXECUTE format('GRANT tally_projector TO %I', current_user);
                END IF;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            -- created meanwhile by this migration in another database
            NULL;
        END;
    END LOOP;
END
$roles$;

-- ---- tally_command ----
GRANT SELECT ON tenants, api_tokens TO tally_command;
GRANT SELECT, INSERT ON events, outbox, operations, idempotency_keys, snapshots TO tally_command;
-- The saga finishes a Transfer's operation; a command stores its response
-- once the reply is packed (store.c).
GRANT UPDATE (status, failure_reason, updated_at) ON operations TO tally_command;
GRANT UPDATE (response) ON idempotency_keys TO tally_command;

-- ---- tally_query ----
GRANT SELECT ON tenants, api_tokens, events, outbox, snapshots, operations, projector_checkpoints,
    dead_letters TO tally_query;

-- ---- tally_projector (also a member of tally_command) ----
GRANT UPDATE (published_at), DELETE ON outbox TO tally_projector;
GRANT SELECT, INSERT, UPDATE, DELETE ON projector_checkpoints, dead_letters TO tally_projector;

-- The read model belongs to the projector, so a --rebuild can create
-- rm_rebuild (CREATE on the database), fill it and swap it in by renaming
-- (schema ownership). A projector login runs as tally_projector (see
-- tally_create_login), so what a rebuild creates is owned by tally_projector
-- too, and gets tally_query's rights from the default privileges below.
DO $rm$
DECLARE
    t text;
BEGIN
    EXECUTE format('GRANT CREATE ON DATABASE %I TO tally_projector', current_database());
    ALTER SCHEMA rm OWNER TO tally_projector;
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'rm' AND c.relkind IN ('r', 'p') LOOP
        EXECUTE format('ALTER TABLE rm.%I OWNER TO tally_projector', t);
    END LOOP;
END
$rm$;
GRANT USAGE ON SCHEMA rm TO tally_query;
GRANT SELECT ON ALL TABLES IN SCHEMA rm TO tally_query;
ALTER DEFAULT PRIVILEGES FOR ROLE tally_projector GRANT USAGE ON SCHEMAS TO tally_query;
ALTER DEFAULT PRIVILEGES FOR ROLE tally_projector GRANT SELECT ON TABLES TO tally_query;

-- ---- the log is append-only: TRUNCATE too ----
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

-- ---- logins ----
-- SELECT tally_create_login('tally_cmd_1', 'tally_command');
-- creates a LOGIN role that is a member of the group, starts every session
-- of it as the group (ALTER ROLE ... SET role), and copies the group's
-- settings (idle_in_transaction_session_timeout), which a login would not
-- inherit. Runs with the caller's rights: it needs CREATEROLE. Give it a
-- password afterwards (psql: \password tally_cmd_1) or use another
-- authentication method; the password is never an argument here, so it
-- cannot end up in the server's statement log.
CREATE FUNCTION tally_create_login(login name, member_of name) RETURNS void
LANGUAGE plpgsql
-- ALTER ROLE ... SET role warns when the caller is not a member of the
-- group; the login is, which is what counts.
SET client_min_messages = warning
AS $fn$
DECLARE
    s text;
BEGIN
    IF member_of NOT IN ('tally_command', 'tally_query', 'tally_projector') THEN
        RAISE EXCEPTION 'unknown tally role "%"', member_of
            USING ERRCODE = '22023',
                  HINT = 'expected tally_command, tally_query or tally_projector';
    END IF;
    EXECUTE format('CREATE ROLE %I LOGIN IN ROLE %I', login, member_of);
    EXECUTE format('ALTER ROLE %I SET role = %L', login, member_of);
    FOR s IN SELECT unnest(setconfig) FROM pg_db_role_setting
              WHERE setdatabase = 0 AND setrole = member_of::regrole LOOP
        EXECUTE format('ALTER ROLE %I SET %I = %L', login, split_part(s, '=', 1),
                       substr(s, strpos(s, '=') + 1));
    END LOOP;
END
$fn$;
