-- Login throttling: failed password attempts per (tenant, username), so a
-- brute-force run answers 429 after a few tries, on every replica alike.
-- Written and read by the login path inside the tenant's context (or the system's
-- for provider staff): no cross-tenant path exists.

CREATE TABLE login_failures (
    id        uuid PRIMARY KEY,
    tenant_id uuid REFERENCES tenants (id) ON DELETE CASCADE,
    username  text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_tenant_username_at ON login_failures (tenant_id, username, at);

ALTER TABLE login_failures ENABLE ROW LEVEL SECURITY;
ALTER TABLE login_failures FORCE ROW LEVEL SECURITY;
CREATE POLICY login_failures_tenant ON login_failures FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY login_failures_system ON login_failures FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

GRANT SELECT, INSERT, DELETE ON login_failures TO basalt_ctx_tenant, basalt_ctx_system;
