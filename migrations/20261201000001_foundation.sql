-- Foundation: request context, tenants, users, API tokens, audit events, idempotency keys.
--
-- Runs as the owner role (`basalt_owner`, see server/src/db/migrate.rs). Every table
-- here has row-level security ENABLED and FORCED in this same file, with policies for
-- SELECT, INSERT, UPDATE and DELETE. The login role `basalt_app` gets no table privilege:
-- it enters one of the context roles below, which get DML.

-- ---------------------------------------------------------------------------
-- Request context.
--
-- The login role basalt_app (NOINHERIT) holds no table privilege and matches no
-- policy. basalt_enter() switches the transaction to one of three context roles
-- (SET LOCAL ROLE, undone at COMMIT/ROLLBACK), and every policy is written for
-- exactly one of them, so the policy in force is a single predicate that the
-- planner can match to an index:
--   basalt_ctx_tenant  inside one tenant:     tenant_id = basalt_tenant()
--   basalt_ctx_system  provider staff:        tenant_id IS NULL (+ the tenant registry)
--   basalt_ctx_auth    credential lookup:     only the row being authenticated
-- No context means no privilege at all: a query outside basalt_enter() fails.
-- ---------------------------------------------------------------------------

-- The tenant the transaction acts in, or NULL.
CREATE FUNCTION basalt_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('basalt.tenant_id', true), '')::uuid $$;

-- The acting user, for audit and ownership; informational, never a grant.
CREATE FUNCTION basalt_actor() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('basalt.actor_id', true), '')::uuid $$;

-- In the auth context: the one user and the one API token being authenticated.
CREATE FUNCTION basalt_auth_user() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('basalt.auth_user', true), '')::uuid $$;
CREATE FUNCTION basalt_auth_token() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('basalt.auth_token', true), '')::uuid $$;

-- Enters a request context. Called as `BEGIN; SELECT basalt_enter(...)` so that the
-- context costs no round trip of its own. Refuses an actor that was deleted or
-- disabled since its token was issued (SQLSTATE BS401), a tenant context whose
-- tenant is gone (BS404) and, for mutating requests, one that is suspended (BS423).
-- In the auth scope the actor (if any) stays visible to itself.
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
    IF p_actor IS NOT NULL OR p_tenant IS NOT NULL THEN
        -- One look, in the auth context: the actor's own row and the tenant's state.
        PERFORM set_config('basalt.auth_user', coalesce(p_actor::text, ''), true);
        PERFORM set_config('role', 'basalt_ctx_auth', true);
        SELECT (SELECT u.disabled FROM users u WHERE u.id = p_actor),
               (SELECT t.state FROM tenants t WHERE t.id = p_tenant)
          INTO v_disabled, v_state;
        IF p_actor IS NOT NULL AND (v_disabled IS NULL OR v_disabled) THEN
            RAISE EXCEPTION 'user % does not exist or is disabled', p_actor USING ERRCODE = 'BS401';
        END IF;
        IF p_tenant IS NOT NULL AND (v_state IS NULL OR v_state = 'deleted') THEN
            RAISE EXCEPTION 'tenant % does not exist', p_tenant USING ERRCODE = 'BS404';
        END IF;
        IF v_state = 'suspended' AND p_mutating THEN
            RAISE EXCEPTION 'tenant % is suspended', p_tenant USING ERRCODE = 'BS423';
        END IF;
        IF p_scope <> 'auth' THEN
            PERFORM set_config('basalt.auth_user', '', true);
        END IF;
    END IF;
    PERFORM set_config('basalt.tenant_id', coalesce(p_tenant::text, ''), true);
    PERFORM set_config('basalt.actor_id', coalesce(p_actor::text, ''), true);
    PERFORM set_config('role', 'basalt_ctx_' || p_scope, true);
END $$;

-- Authenticates an API token by id in the auth context: makes exactly that token
-- and its user visible, and answers what the server needs to check the secret.
CREATE FUNCTION basalt_lookup_api_token(p_id uuid)
    RETURNS TABLE (secret_sha256 bytea, user_id uuid, username text, home_tenant uuid,
                   context_tenant_id uuid, usable boolean)
    LANGUAGE plpgsql AS $$
DECLARE
    v_user uuid;
BEGIN
    PERFORM set_config('basalt.auth_token', p_id::text, true);
    SELECT t.user_id INTO v_user FROM api_tokens t WHERE t.id = p_id;
    IF v_user IS NULL THEN
        RETURN;
    END IF;
    PERFORM set_config('basalt.auth_user', v_user::text, true);
    RETURN QUERY
        SELECT t.secret_sha256, t.user_id, u.username, u.tenant_id, t.context_tenant_id,
               (t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
                AND NOT u.disabled)
          FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.id = p_id;
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
-- A tenant sees itself; system scope manages every tenant; the auth scope resolves
-- a tenant name at login (read only).
CREATE POLICY tenants_tenant ON tenants FOR SELECT TO basalt_ctx_tenant USING (id = basalt_tenant());
CREATE POLICY tenants_system ON tenants FOR ALL TO basalt_ctx_system USING (true) WITH CHECK (true);
CREATE POLICY tenants_auth ON tenants FOR SELECT TO basalt_ctx_auth USING (true);

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
CREATE POLICY users_tenant ON users FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY users_system ON users FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);
CREATE POLICY users_auth ON users FOR SELECT TO basalt_ctx_auth USING (id = basalt_auth_user());

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
CREATE POLICY api_tokens_tenant ON api_tokens FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY api_tokens_system ON api_tokens FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);
-- The auth scope sees the one token being authenticated, and may stamp its
-- last_used_at (the column grant below is all it can update).
CREATE POLICY api_tokens_auth_read ON api_tokens FOR SELECT TO basalt_ctx_auth
    USING (id = basalt_auth_token());
CREATE POLICY api_tokens_auth_stamp ON api_tokens FOR UPDATE TO basalt_ctx_auth
    USING (id = basalt_auth_token()) WITH CHECK (id = basalt_auth_token());

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
CREATE POLICY audit_events_tenant_read ON audit_events FOR SELECT TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant());
CREATE POLICY audit_events_tenant_write ON audit_events FOR INSERT TO basalt_ctx_tenant
    WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY audit_events_system_read ON audit_events FOR SELECT TO basalt_ctx_system
    USING (tenant_id IS NULL);
CREATE POLICY audit_events_system_write ON audit_events FOR INSERT TO basalt_ctx_system
    WITH CHECK (tenant_id IS NULL);
CREATE POLICY audit_events_no_update ON audit_events FOR UPDATE USING (false) WITH CHECK (false);
CREATE POLICY audit_events_no_delete ON audit_events FOR DELETE USING (false);

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
CREATE POLICY idempotency_keys_tenant ON idempotency_keys FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY idempotency_keys_system ON idempotency_keys FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

-- ---------------------------------------------------------------------------
-- Grants: to the context roles only. basalt_app itself can do nothing but enter a
-- context; each context role gets the DML its policies are written for.
-- ---------------------------------------------------------------------------
GRANT USAGE ON SCHEMA public TO basalt_app, basalt_ctx_tenant, basalt_ctx_system, basalt_ctx_auth;
REVOKE EXECUTE ON FUNCTION basalt_enter(text, uuid, uuid, boolean), basalt_lookup_api_token(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION basalt_enter(text, uuid, uuid, boolean) TO basalt_app;
GRANT EXECUTE ON FUNCTION basalt_lookup_api_token(uuid) TO basalt_ctx_auth;

GRANT SELECT ON tenants TO basalt_ctx_tenant, basalt_ctx_auth;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants TO basalt_ctx_system;

GRANT SELECT, INSERT, UPDATE, DELETE ON users, idempotency_keys TO basalt_ctx_tenant, basalt_ctx_system;
GRANT SELECT ON users TO basalt_ctx_auth;

GRANT SELECT, INSERT, DELETE ON api_tokens TO basalt_ctx_tenant, basalt_ctx_system;
GRANT UPDATE (revoked_at) ON api_tokens TO basalt_ctx_tenant, basalt_ctx_system;
GRANT SELECT, UPDATE (last_used_at) ON api_tokens TO basalt_ctx_auth;

GRANT SELECT, INSERT ON audit_events TO basalt_ctx_tenant, basalt_ctx_system;
