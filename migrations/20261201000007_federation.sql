-- Federation: one global controller (identity, tenants, roles, the region
-- registry, entitlements) and regional gateways (compute), each with its own
-- Postgres running this same schema. See docs/federation.md.
--
--   * regions gains what the global controller's health checks learn.
--   * tenant_regions: which tenant may use which region (an entitlement). At the
--     global controller and in a standalone install it is the registry of
--     entitlements; in a region it holds the rows of the tenants entitled to that
--     region (pushed by the controller), and basalt_enter refuses the others.
--   * federation_state: one row in a region's database: who it is, the
--     controller's public key, and until when the controller's last push is
--     trusted. While unconfirmed, tenants' mutations are refused (BS503).
--   * federation_nonces: nonces of signed service calls, kept for the replay
--     window, shared by every replica.
--   * region_objects: at the global controller, which region holds an object
--     (learned on create or by asking): a routing hint, never an authority.
--
-- All four are RLS-forced like every table; only the system context writes them.

ALTER TABLE regions
    ADD COLUMN key_id       text,
    ADD COLUMN last_seen_at timestamptz,
    ADD COLUMN last_error   text,
    ADD COLUMN latency_ms   integer,
    ADD COLUMN live_vms     integer NOT NULL DEFAULT 0;

CREATE TABLE tenant_regions (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    region_id  uuid NOT NULL REFERENCES regions (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, region_id)
);

CREATE TABLE federation_state (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    tenant_id       uuid CHECK (tenant_id IS NULL),
    region_id       uuid NOT NULL,
    region_name     text NOT NULL,
    global_url      text NOT NULL,
    -- The controller's Ed25519 public key (raw, 32 bytes) that user tokens verify against.
    global_jwt_key  bytea,
    confirmed_until timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE federation_nonces (
    tenant_id uuid CHECK (tenant_id IS NULL),
    key_id    text NOT NULL,
    nonce     text NOT NULL,
    seen_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX federation_nonces_tenant_seen ON federation_nonces (tenant_id, seen_at);

CREATE TABLE region_objects (
    id        uuid PRIMARY KEY,
    tenant_id uuid CHECK (tenant_id IS NULL),
    region_id uuid NOT NULL REFERENCES regions (id) ON DELETE CASCADE,
    kind      text NOT NULL
);

ALTER TABLE tenant_regions ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_regions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_regions_tenant_read ON tenant_regions FOR SELECT TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant());
CREATE POLICY tenant_regions_system ON tenant_regions FOR ALL TO basalt_ctx_system
    USING (true) WITH CHECK (true);
CREATE POLICY tenant_regions_auth ON tenant_regions FOR SELECT TO basalt_ctx_auth
    USING (true);

ALTER TABLE federation_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE federation_state FORCE ROW LEVEL SECURITY;
CREATE POLICY federation_state_system ON federation_state FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);
CREATE POLICY federation_state_auth ON federation_state FOR SELECT TO basalt_ctx_auth
    USING (tenant_id IS NULL);

ALTER TABLE federation_nonces ENABLE ROW LEVEL SECURITY;
ALTER TABLE federation_nonces FORCE ROW LEVEL SECURITY;
CREATE POLICY federation_nonces_system ON federation_nonces FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

ALTER TABLE region_objects ENABLE ROW LEVEL SECURITY;
ALTER TABLE region_objects FORCE ROW LEVEL SECURITY;
CREATE POLICY region_objects_system ON region_objects FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_regions, federation_state, federation_nonces, region_objects
    TO basalt_ctx_system;
GRANT SELECT ON tenant_regions TO basalt_ctx_tenant;
GRANT SELECT ON tenant_regions, federation_state TO basalt_ctx_auth;

-- Tenants see the regions they are entitled to, and no other.
DROP POLICY regions_tenant_read ON regions;
CREATE POLICY regions_tenant_read ON regions FOR SELECT TO basalt_ctx_tenant
    USING (tenant_id IS NULL AND id IN (SELECT r.region_id FROM tenant_regions r WHERE r.tenant_id = basalt_tenant()));

-- Capacity in a region entitles to it: existing quotas become entitlements.
INSERT INTO tenant_regions (tenant_id, region_id)
SELECT DISTINCT q.tenant_id, c.region_id FROM quotas q JOIN clusters c ON c.id = q.cluster_id
ON CONFLICT DO NOTHING;

-- The tenant checks every way into a context shares (run in the auth context):
-- gone (BS404), suspended for a mutation (BS423) and, in a region's database,
-- not entitled to this region (BS403) or not confirmed by the controller
-- recently enough to allow a mutation (BS503).
CREATE FUNCTION basalt_check_tenant(p_tenant uuid, p_mutating boolean) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_region uuid;
    v_until timestamptz;
BEGIN
    SELECT t.state INTO v_state FROM tenants t WHERE t.id = p_tenant;
    IF v_state IS NULL OR v_state = 'deleted' THEN
        RAISE EXCEPTION 'tenant % does not exist', p_tenant USING ERRCODE = 'BS404';
    END IF;
    SELECT f.region_id, f.confirmed_until INTO v_region, v_until FROM federation_state f;
    IF v_region IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM tenant_regions r WHERE r.tenant_id = p_tenant AND r.region_id = v_region) THEN
            RAISE EXCEPTION 'tenant % is not entitled to this region', p_tenant USING ERRCODE = 'BS403';
        END IF;
        IF p_mutating AND (v_until IS NULL OR v_until < now()) THEN
            RAISE EXCEPTION 'the global controller has not confirmed tenant states recently' USING ERRCODE = 'BS503';
        END IF;
    END IF;
    IF v_state = 'suspended' AND p_mutating THEN
        RAISE EXCEPTION 'tenant % is suspended', p_tenant USING ERRCODE = 'BS423';
    END IF;
END $$;
REVOKE EXECUTE ON FUNCTION basalt_check_tenant(uuid, boolean) FROM PUBLIC;
-- Runs after the switch to the auth context, so that role is the one that calls it.
GRANT EXECUTE ON FUNCTION basalt_check_tenant(uuid, boolean) TO basalt_ctx_auth;

CREATE OR REPLACE FUNCTION basalt_enter(p_scope text, p_tenant uuid, p_actor uuid, p_mutating boolean)
    RETURNS TABLE (binding_id uuid, role_id uuid, role_name text, cluster_id uuid,
                   system_binding boolean, permissions text[])
    LANGUAGE plpgsql AS $$
DECLARE
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
        SELECT u.disabled INTO v_disabled FROM users u WHERE u.id = p_actor;
        IF p_actor IS NOT NULL AND (v_disabled IS NULL OR v_disabled) THEN
            RAISE EXCEPTION 'user % does not exist or is disabled', p_actor USING ERRCODE = 'BS401';
        END IF;
        IF p_tenant IS NOT NULL THEN
            PERFORM basalt_check_tenant(p_tenant, p_mutating);
        END IF;
        IF p_actor IS NOT NULL AND p_scope <> 'auth' THEN
            RETURN QUERY
                SELECT b.id, r.id, r.name, b.cluster_id, b.tenant_id IS NULL, r.permissions
                  FROM role_bindings b JOIN roles r ON r.id = b.role_id
                 WHERE b.user_id = p_actor AND (b.tenant_id IS NULL OR b.tenant_id = p_tenant);
        END IF;
        IF p_scope <> 'auth' THEN
            PERFORM set_config('basalt.auth_user', '', true);
        END IF;
    END IF;
    PERFORM set_config('basalt.tenant_id', coalesce(p_tenant::text, ''), true);
    PERFORM set_config('basalt.actor_id', coalesce(p_actor::text, ''), true);
    PERFORM set_config('role', 'basalt_ctx_' || p_scope, true);
END $$;

-- A region's way in: the caller was authenticated by the global controller (a
-- signed forwarded call, or a user token checked against the controller's key
-- and resolved by it), so there is no local user row to look at; the tenant
-- checks are the same. Refused outside a region's database.
CREATE FUNCTION basalt_enter_delegated(p_scope text, p_tenant uuid, p_actor uuid, p_mutating boolean)
    RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_scope NOT IN ('system', 'tenant') THEN
        RAISE EXCEPTION 'invalid scope %', p_scope USING ERRCODE = '22023';
    END IF;
    IF (p_scope = 'tenant') <> (p_tenant IS NOT NULL) THEN
        RAISE EXCEPTION 'tenant scope needs a tenant, and only it' USING ERRCODE = '22023';
    END IF;
    PERFORM set_config('role', 'basalt_ctx_auth', true);
    IF NOT EXISTS (SELECT 1 FROM federation_state) THEN
        RAISE EXCEPTION 'delegated entry is only for a region''s database' USING ERRCODE = '42501';
    END IF;
    IF p_tenant IS NOT NULL THEN
        PERFORM basalt_check_tenant(p_tenant, p_mutating);
    END IF;
    PERFORM set_config('basalt.tenant_id', coalesce(p_tenant::text, ''), true);
    PERFORM set_config('basalt.actor_id', coalesce(p_actor::text, ''), true);
    PERFORM set_config('role', 'basalt_ctx_' || p_scope, true);
END $$;
REVOKE EXECUTE ON FUNCTION basalt_enter_delegated(text, uuid, uuid, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION basalt_enter_delegated(text, uuid, uuid, boolean) TO basalt_app;
