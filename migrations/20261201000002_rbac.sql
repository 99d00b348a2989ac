-- RBAC: roles (built-in and custom) and role bindings at system, tenant or cluster scope.
--
-- Built-in roles are system rows (tenant_id IS NULL, builtin) whose permission sets
-- the server keeps equal to its catalog at every start. Custom roles belong to one
-- tenant (or, for provider staff, to the system). A binding grants one role to one
-- user at one scope object: the system (tenant_id IS NULL), a tenant, or a cluster
-- of a tenant (cluster_id set).

CREATE TABLE roles (
    id          uuid PRIMARY KEY,
    tenant_id   uuid REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    permissions text[] NOT NULL DEFAULT '{}',
    builtin     boolean NOT NULL DEFAULT false,
    -- Built-in roles for provider staff only: not shown to tenants (white-label).
    provider_only boolean NOT NULL DEFAULT false,
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT roles_tenant_name UNIQUE NULLS NOT DISTINCT (tenant_id, name),
    CONSTRAINT roles_tenant_id_id UNIQUE NULLS NOT DISTINCT (tenant_id, id),
    CHECK (NOT builtin OR tenant_id IS NULL),
    CHECK (NOT provider_only OR tenant_id IS NULL)
);

CREATE TABLE role_bindings (
    id             uuid PRIMARY KEY,
    tenant_id      uuid REFERENCES tenants (id) ON DELETE CASCADE,
    user_id        uuid NOT NULL,
    role_id        uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    -- The role's own tenant: NULL for built-in and system roles, else the binding's tenant.
    role_tenant_id uuid,
    -- Cluster scope: the binding applies to this cluster of the tenant only.
    cluster_id     uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT role_bindings_user FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT role_bindings_role FOREIGN KEY (role_tenant_id, role_id)
        REFERENCES roles (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT role_bindings_unique UNIQUE NULLS NOT DISTINCT (tenant_id, user_id, role_id, cluster_id),
    CHECK (role_tenant_id IS NULL OR role_tenant_id = tenant_id),
    CHECK (cluster_id IS NULL OR tenant_id IS NOT NULL)
);
CREATE INDEX role_bindings_tenant_user ON role_bindings (tenant_id, user_id);

ALTER TABLE roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE roles FORCE ROW LEVEL SECURITY;
-- Tenants read their own roles and the built-in roles meant for tenants; they
-- write only their own.
CREATE POLICY roles_tenant_read ON roles FOR SELECT TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant() OR (tenant_id IS NULL AND builtin AND NOT provider_only));
CREATE POLICY roles_tenant_insert ON roles FOR INSERT TO basalt_ctx_tenant
    WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY roles_tenant_update ON roles FOR UPDATE TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY roles_tenant_delete ON roles FOR DELETE TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant());
CREATE POLICY roles_system ON roles FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);
-- The auth context reads the roles bound to the user it authenticates.
CREATE POLICY roles_auth ON roles FOR SELECT TO basalt_ctx_auth
    USING (id IN (SELECT b.role_id FROM role_bindings b WHERE b.user_id = basalt_auth_user()));

ALTER TABLE role_bindings ENABLE ROW LEVEL SECURITY;
ALTER TABLE role_bindings FORCE ROW LEVEL SECURITY;
CREATE POLICY role_bindings_tenant ON role_bindings FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY role_bindings_system ON role_bindings FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);
CREATE POLICY role_bindings_auth ON role_bindings FOR SELECT TO basalt_ctx_auth
    USING (user_id = basalt_auth_user());

GRANT SELECT, INSERT, UPDATE, DELETE ON roles, role_bindings TO basalt_ctx_tenant, basalt_ctx_system;
GRANT SELECT ON roles, role_bindings TO basalt_ctx_auth;

-- basalt_enter now also answers the actor's grants in the context it enters: one
-- row per binding (the system bindings of provider staff, and the tenant's own,
-- tenant- or cluster-scoped), read in the auth context before the switch.
DROP FUNCTION basalt_enter(text, uuid, uuid, boolean);
CREATE FUNCTION basalt_enter(p_scope text, p_tenant uuid, p_actor uuid, p_mutating boolean)
    RETURNS TABLE (binding_id uuid, role_id uuid, role_name text, cluster_id uuid,
                   system_binding boolean, permissions text[])
    LANGUAGE plpgsql AS $$
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
REVOKE EXECUTE ON FUNCTION basalt_enter(text, uuid, uuid, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION basalt_enter(text, uuid, uuid, boolean) TO basalt_app;
