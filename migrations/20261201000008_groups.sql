-- Groups: a tenant's teams. A role bound to a group is held by every member, in
-- the binding's scope (the tenant, or one cluster). Groups are tenant rows only
-- (provider staff bind roles to users directly).
--
--   * groups, group_members: tenant rows, RLS forced like every table; the auth
--     context reads only the memberships of the user it authenticates.
--   * role_bindings: a binding names a user or a group (exactly one).
--   * basalt_enter answers the bindings of the actor's groups too.

CREATE TABLE groups (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT groups_tenant_name UNIQUE (tenant_id, name),
    CONSTRAINT groups_tenant_id_id UNIQUE (tenant_id, id)
);

CREATE TABLE group_members (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    group_id   uuid NOT NULL,
    user_id    uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, user_id),
    CONSTRAINT group_members_group FOREIGN KEY (tenant_id, group_id)
        REFERENCES groups (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT group_members_user FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX group_members_tenant_user ON group_members (tenant_id, user_id);

ALTER TABLE groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE groups FORCE ROW LEVEL SECURITY;
CREATE POLICY groups_tenant ON groups FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
-- The system context's policy matches nothing (groups are tenants'), as for VMs.
CREATE POLICY groups_system ON groups FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

ALTER TABLE group_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE group_members FORCE ROW LEVEL SECURITY;
CREATE POLICY group_members_tenant ON group_members FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY group_members_system ON group_members FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);
CREATE POLICY group_members_auth ON group_members FOR SELECT TO basalt_ctx_auth
    USING (user_id = basalt_auth_user());

GRANT SELECT, INSERT, UPDATE, DELETE ON groups, group_members TO basalt_ctx_tenant, basalt_ctx_system;
GRANT SELECT ON group_members TO basalt_ctx_auth;

-- A binding names a user or a group.
ALTER TABLE role_bindings ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE role_bindings ADD COLUMN group_id uuid;
ALTER TABLE role_bindings ADD CONSTRAINT role_bindings_group FOREIGN KEY (tenant_id, group_id)
    REFERENCES groups (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE role_bindings ADD CONSTRAINT role_bindings_user_or_group CHECK (num_nonnulls(user_id, group_id) = 1);
ALTER TABLE role_bindings DROP CONSTRAINT role_bindings_unique;
ALTER TABLE role_bindings ADD CONSTRAINT role_bindings_unique
    UNIQUE NULLS NOT DISTINCT (tenant_id, user_id, group_id, role_id, cluster_id);
CREATE INDEX role_bindings_tenant_group ON role_bindings (tenant_id, group_id);

-- The auth context reads the bindings (and roles) of the user's groups too.
DROP POLICY role_bindings_auth ON role_bindings;
CREATE POLICY role_bindings_auth ON role_bindings FOR SELECT TO basalt_ctx_auth
    USING (user_id = basalt_auth_user()
           OR group_id IN (SELECT m.group_id FROM group_members m WHERE m.user_id = basalt_auth_user()));
-- Two IN lists rather than one OR, so each is an index lookup: this policy is
-- evaluated on every request (measured: an OR made it a scan of every binding,
-- 13 ms per request at 10,000 tenants; docs/performance.md).
DROP POLICY roles_auth ON roles;
CREATE POLICY roles_auth ON roles FOR SELECT TO basalt_ctx_auth
    USING (id IN (SELECT b.role_id FROM role_bindings b WHERE b.user_id = basalt_auth_user())
        OR id IN (SELECT b.role_id FROM role_bindings b
                   WHERE b.group_id IN (SELECT m.group_id FROM group_members m WHERE m.user_id = basalt_auth_user())));

-- The auth context reads one user's own bindings and memberships before any
-- tenant is chosen (basalt_enter, every request): by user and by group, not by
-- tenant. RLS still limits what these find to that user.
CREATE INDEX role_bindings_user ON role_bindings (user_id);
CREATE INDEX role_bindings_group ON role_bindings (group_id);
CREATE INDEX group_members_user ON group_members (user_id);

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
            -- The actor's own bindings, and those of its groups in this tenant.
            RETURN QUERY
                SELECT b.id, r.id, r.name, b.cluster_id, b.tenant_id IS NULL, r.permissions
                  FROM role_bindings b JOIN roles r ON r.id = b.role_id
                 WHERE (b.user_id = p_actor
                        OR b.group_id IN (SELECT m.group_id FROM group_members m
                                           WHERE m.tenant_id = p_tenant AND m.user_id = p_actor))
                   AND (b.tenant_id IS NULL OR b.tenant_id = p_tenant);
        END IF;
        IF p_scope <> 'auth' THEN
            PERFORM set_config('basalt.auth_user', '', true);
        END IF;
    END IF;
    PERFORM set_config('basalt.tenant_id', coalesce(p_tenant::text, ''), true);
    PERFORM set_config('basalt.actor_id', coalesce(p_actor::text, ''), true);
    PERFORM set_config('role', 'basalt_ctx_' || p_scope, true);
END $$;
