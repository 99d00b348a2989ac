-- Identity depth: service accounts, invitations and tenant policies.
--
--   * users.kind: a service account is a user of kind 'service' with no password
--     (it cannot log in; it authenticates with API tokens), so role bindings,
--     groups and tokens work for it unchanged.
--   * invitations: a single-use, expiring secret (only its SHA-256 is stored)
--     that lets someone create their own user in the invitation's context, with
--     an optional role bound at once. Context rows like every table; the auth
--     context sees exactly the one invitation being redeemed (as for API tokens).
--   * tenant_policies: a tenant's password and token rules (one row per tenant,
--     absent: the server's defaults).

-- ---------------------------------------------------------------------------
-- Service accounts.
-- ---------------------------------------------------------------------------
ALTER TABLE users ADD COLUMN kind text NOT NULL DEFAULT 'human' CHECK (kind IN ('human', 'service'));
ALTER TABLE users ADD COLUMN description text NOT NULL DEFAULT '';
ALTER TABLE users ADD CONSTRAINT users_service_no_password CHECK (kind = 'human' OR password_hash IS NULL);

-- ---------------------------------------------------------------------------
-- Invitations.
-- ---------------------------------------------------------------------------
CREATE TABLE invitations (
    id               uuid PRIMARY KEY,
    tenant_id        uuid REFERENCES tenants (id) ON DELETE CASCADE,
    email            text NOT NULL,
    -- The role bound to the new user on acceptance (a built-in role, or one of
    -- the context's own). A deleted role takes its pending invitations with it.
    role_id          uuid REFERENCES roles (id) ON DELETE CASCADE,
    secret_sha256    bytea NOT NULL,
    created_by       uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    revoked_at       timestamptz,
    accepted_at      timestamptz,
    accepted_user_id uuid,
    CHECK (revoked_at IS NULL OR accepted_at IS NULL),
    CHECK ((accepted_at IS NULL) = (accepted_user_id IS NULL))
);
CREATE INDEX invitations_tenant_id ON invitations (tenant_id, id);

-- In the auth context: the one invitation being redeemed.
CREATE FUNCTION basalt_auth_invitation() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('basalt.auth_invitation', true), '')::uuid $$;

-- Finds an invitation by id in the auth context (before any tenant is known):
-- makes exactly that row visible and answers its context and secret digest; the
-- server compares the secret, then redeems it inside that context.
CREATE FUNCTION basalt_lookup_invitation(p_id uuid)
    RETURNS TABLE (tenant_id uuid, secret_sha256 bytea)
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('basalt.auth_invitation', p_id::text, true);
    RETURN QUERY SELECT i.tenant_id, i.secret_sha256 FROM invitations i WHERE i.id = p_id;
END $$;

ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY invitations_tenant ON invitations FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY invitations_system ON invitations FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);
CREATE POLICY invitations_auth ON invitations FOR SELECT TO basalt_ctx_auth
    USING (id = basalt_auth_invitation());

GRANT SELECT, INSERT ON invitations TO basalt_ctx_tenant, basalt_ctx_system;
GRANT UPDATE (revoked_at, accepted_at, accepted_user_id) ON invitations TO basalt_ctx_tenant, basalt_ctx_system;
GRANT SELECT ON invitations TO basalt_ctx_auth;
REVOKE EXECUTE ON FUNCTION basalt_lookup_invitation(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION basalt_lookup_invitation(uuid) TO basalt_ctx_auth;

-- ---------------------------------------------------------------------------
-- Tenant policies: tenant rows only (the system context's policy matches nothing).
-- ---------------------------------------------------------------------------
CREATE TABLE tenant_policies (
    tenant_id           uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    password_min_length integer NOT NULL DEFAULT 12 CHECK (password_min_length BETWEEN 8 AND 128),
    token_max_ttl_days  integer CHECK (token_max_ttl_days BETWEEN 1 AND 732),
    version             bigint NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE tenant_policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_policies FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_policies_tenant ON tenant_policies FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY tenant_policies_system ON tenant_policies FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

GRANT SELECT, INSERT, UPDATE ON tenant_policies TO basalt_ctx_tenant, basalt_ctx_system;
