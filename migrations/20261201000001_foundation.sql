-- Foundation: request context, tenants, users, API tokens, audit events, idempotency keys.
--
-- Runs as the owner role (`basalt_owner`, see server/src/db/migrate.rs). Every table
-- here has row-level security ENABLED and FORCED in this same file, with policies for
-- SELECT, INSERT, UPDATE and DELETE. The application role `basalt_app` only gets DML.

-- ---------------------------------------------------------------------------
-- Request context. Set transaction-locally by basalt_enter() in the first round trip
-- of every request transaction. A missing or empty setting means "no rows".
-- ---------------------------------------------------------------------------

-- The tenant the transaction acts in, or NULL.
CREATE FUNCTION basalt_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('basalt.tenant_id', true), '')::uuid $$;

-- 'system' (provider staff at system scope), 'tenant' (inside basalt_tenant()),
-- 'auth' (credential lookup before a principal is known), or NULL (nothing).
CREATE FUNCTION basalt_scope() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('basalt.scope', true), '') $$;

-- The acting user, for audit and ownership; informational, never a grant.
CREATE FUNCTION basalt_actor() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('basalt.actor_id', true), '')::uuid $$;

-- True when a row with this tenant_id belongs to the caller's context: a tenant's
-- own rows in tenant scope, system rows (tenant_id IS NULL) at system scope.
CREATE FUNCTION basalt_owns(row_tenant uuid) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT row_tenant = basalt_tenant()
              OR (row_tenant IS NULL AND basalt_scope() = 'system') $$;

-- Enters a request context. Called as `BEGIN; SELECT basalt_enter(...)` so that the
-- context costs no round trip of its own. Refuses an actor that was deleted or
-- disabled since its token was issued (SQLSTATE BS401), a tenant context whose
-- tenant is gone (BS404) and, for mutating requests, one that is suspended (BS423).
CREATE FUNCTION basalt_enter(p_scope text, p_tenant uuid, p_actor uuid, p_mutating boolean)
    RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_disabled boolean;
BEGIN
    IF p_scope NOT IN ('system', 'tenant', 'auth') THEN
        RAISE EXCEPTION 'invalid scope %', p_scope USING ERRCODE = '22023';
    END IF;
    IF (p_scope = 'tenant') <> (p_tenant IS NOT NULL) THEN
        RAISE EXCEPTION 'tenant scope needs a tenant, and only it' USING ERRCODE = '22023';
    END IF;
    IF p_actor IS NOT NULL THEN
        -- The actor's own row, read through the auth scope's read-only policy.
        PERFORM set_config('basalt.scope', 'auth', true);
        SELECT disabled INTO v_disabled FROM users WHERE id = p_actor;
        IF v_disabled IS NULL OR v_disabled THEN
            RAISE EXCEPTION 'user % does not exist or is disabled', p_actor USING ERRCODE = 'BS401';
        END IF;
    END IF;
    PERFORM set_config('basalt.scope', p_scope, true);
    PERFORM set_config('basalt.tenant_id', coalesce(p_tenant::text, ''), true);
    PERFORM set_config('basalt.actor_id', coalesce(p_actor::text, ''), true);
    IF p_tenant IS NOT NULL THEN
        SELECT state INTO v_state FROM tenants WHERE id = p_tenant;
        IF v_state IS NULL OR v_state = 'deleted' THEN
            RAISE EXCEPTION 'tenant % does not exist', p_tenant USING ERRCODE = 'BS404';
        ELSIF v_state = 'suspended' AND p_mutating THEN
            RAISE EXCEPTION 'tenant % is suspended', p_tenant USING ERRCODE = 'BS423';
        END IF;
    END IF;
END $$;

-- ---------------------------------------------------------------------------
-- Tenants. The root of isolation: tenant_id = id, so the row belongs to itself.
-- ---------------------------------------------------------------------------
CREATE TABLE tenants (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL GENERATED ALWAYS AS (id) STORED,
    name           text NOT NULL,
    display_name   text NOT NULL DEFAULT '',
    state          text NOT NULL DEFAULT 'active'
                   CHECK (state IN ('active', 'suspended', 'deleted')),
    -- What suspension does to running VMs: stop them, or keep them running.
    suspend_action text NOT NULL DEFAULT 'stop' CHECK (suspend_action IN ('stop', 'keep')),
    version        bigint NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    purge_after    timestamptz,
    CHECK ((state = 'deleted') = (deleted_at IS NOT NULL))
);
-- Tenant names are global (they are what users type at login); a deleted tenant
-- frees its name at once, its row waits for the purge.
CREATE UNIQUE INDEX tenants_live_name ON tenants (name) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX tenants_tenant_id ON tenants (tenant_id);

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
-- A tenant sees itself; system scope sees every tenant; the auth scope resolves a
-- tenant name at login.
CREATE POLICY tenants_select ON tenants FOR SELECT
    USING (id = basalt_tenant() OR basalt_scope() IN ('system', 'auth'));
CREATE POLICY tenants_insert ON tenants FOR INSERT
    WITH CHECK (basalt_scope() = 'system');
CREATE POLICY tenants_update ON tenants FOR UPDATE
    USING (basalt_scope() = 'system') WITH CHECK (basalt_scope() = 'system');
CREATE POLICY tenants_delete ON tenants FOR DELETE
    USING (basalt_scope() = 'system');

-- ---------------------------------------------------------------------------
-- Users: provider staff (tenant_id IS NULL, system scope) and tenant users.
-- ---------------------------------------------------------------------------
CREATE TABLE users (
    id            uuid PRIMARY KEY,
    tenant_id     uuid REFERENCES tenants (id) ON DELETE CASCADE,
    username      text NOT NULL,
    email         text,
    -- argon2id PHC string; NULL for users who only use API tokens.
    password_hash text,
    disabled      boolean NOT NULL DEFAULT false,
    version       bigint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_tenant_username UNIQUE NULLS NOT DISTINCT (tenant_id, username),
    CONSTRAINT users_tenant_id_id UNIQUE (tenant_id, id)
);

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY users_select ON users FOR SELECT
    USING (basalt_owns(tenant_id) OR basalt_scope() = 'auth');
CREATE POLICY users_insert ON users FOR INSERT WITH CHECK (basalt_owns(tenant_id));
CREATE POLICY users_update ON users FOR UPDATE
    USING (basalt_owns(tenant_id)) WITH CHECK (basalt_owns(tenant_id));
CREATE POLICY users_delete ON users FOR DELETE USING (basalt_owns(tenant_id));

-- ---------------------------------------------------------------------------
-- API tokens for pipelines: only a SHA-256 of the secret is stored. The row belongs
-- to the owning user's tenant; context_tenant_id is the one tenant context the
-- token carries (NULL: system scope, only for provider staff).
-- ---------------------------------------------------------------------------
CREATE TABLE api_tokens (
    id                uuid PRIMARY KEY,
    tenant_id         uuid REFERENCES tenants (id) ON DELETE CASCADE,
    user_id           uuid NOT NULL,
    context_tenant_id uuid REFERENCES tenants (id) ON DELETE CASCADE,
    name              text NOT NULL,
    secret_sha256     bytea NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz,
    revoked_at        timestamptz,
    last_used_at      timestamptz,
    CONSTRAINT api_tokens_user FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT api_tokens_tenant_name UNIQUE NULLS NOT DISTINCT (tenant_id, user_id, name),
    -- A tenant user's token can only carry its own tenant.
    CHECK (tenant_id IS NULL OR context_tenant_id = tenant_id)
);
CREATE INDEX api_tokens_tenant_user ON api_tokens (tenant_id, user_id);

ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY api_tokens_select ON api_tokens FOR SELECT
    USING (basalt_owns(tenant_id) OR basalt_scope() = 'auth');
CREATE POLICY api_tokens_insert ON api_tokens FOR INSERT WITH CHECK (basalt_owns(tenant_id));
-- The auth scope may stamp last_used_at, nothing else can change through it
-- (the column grant below limits what UPDATE can touch).
CREATE POLICY api_tokens_update ON api_tokens FOR UPDATE
    USING (basalt_owns(tenant_id) OR basalt_scope() = 'auth')
    WITH CHECK (basalt_owns(tenant_id) OR basalt_scope() = 'auth');
CREATE POLICY api_tokens_delete ON api_tokens FOR DELETE USING (basalt_owns(tenant_id));

-- ---------------------------------------------------------------------------
-- Audit events: append-only. The app role gets SELECT and INSERT only, and the
-- UPDATE/DELETE policies admit nothing even for a role that got the grant.
-- No foreign key: the trail outlives a purged tenant.
-- ---------------------------------------------------------------------------
CREATE TABLE audit_events (
    id          uuid PRIMARY KEY,
    tenant_id   uuid,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    uuid,
    actor_name  text NOT NULL,
    action      text NOT NULL,
    target_type text NOT NULL,
    target_id   uuid,
    request_id  text,
    outcome     text NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_tenant_id ON audit_events (tenant_id, id);

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_events_select ON audit_events FOR SELECT USING (basalt_owns(tenant_id));
CREATE POLICY audit_events_insert ON audit_events FOR INSERT WITH CHECK (basalt_owns(tenant_id));
CREATE POLICY audit_events_update ON audit_events FOR UPDATE USING (false) WITH CHECK (false);
CREATE POLICY audit_events_delete ON audit_events FOR DELETE USING (false);

-- ---------------------------------------------------------------------------
-- Idempotency keys: a create retried with the same key answers the stored result.
-- Kept in Postgres so any replica answers the retry.
-- ---------------------------------------------------------------------------
CREATE TABLE idempotency_keys (
    id              uuid PRIMARY KEY,
    tenant_id       uuid REFERENCES tenants (id) ON DELETE CASCADE,
    actor_id        uuid NOT NULL,
    key             text NOT NULL,
    request_sha256  bytea NOT NULL,
    response_status integer NOT NULL,
    response_body   jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_key UNIQUE NULLS NOT DISTINCT (tenant_id, actor_id, key)
);
CREATE INDEX idempotency_keys_tenant_created ON idempotency_keys (tenant_id, created_at);

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY idempotency_keys_select ON idempotency_keys FOR SELECT USING (basalt_owns(tenant_id));
CREATE POLICY idempotency_keys_insert ON idempotency_keys FOR INSERT WITH CHECK (basalt_owns(tenant_id));
CREATE POLICY idempotency_keys_update ON idempotency_keys FOR UPDATE
    USING (basalt_owns(tenant_id)) WITH CHECK (basalt_owns(tenant_id));
CREATE POLICY idempotency_keys_delete ON idempotency_keys FOR DELETE USING (basalt_owns(tenant_id));

-- ---------------------------------------------------------------------------
-- Grants: the application role gets DML and nothing else.
-- ---------------------------------------------------------------------------
GRANT USAGE ON SCHEMA public TO basalt_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, users, idempotency_keys TO basalt_app;
GRANT SELECT, INSERT, DELETE ON api_tokens TO basalt_app;
GRANT UPDATE (last_used_at, revoked_at) ON api_tokens TO basalt_app;
GRANT SELECT, INSERT ON audit_events TO basalt_app;
GRANT EXECUTE ON FUNCTION basalt_tenant(), basalt_scope(), basalt_actor(), basalt_owns(uuid),
    basalt_enter(text, uuid, uuid, boolean) TO basalt_app;
