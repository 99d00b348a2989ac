-- Which tenants have an enabled webhook: the delivery job visits only those.
-- Visiting every live tenant every 2 s made every request slower as the estate
-- grew (1.3x a tenant's list, 1.5x the staff's, at 10,000 tenants:
-- docs/performance.md).
--
--   * webhook_tenants: tenant rows holding nothing but the tenant's id, kept in
--     step with `webhooks` by a statement trigger that runs as the caller (RLS
--     applies inside it: a tenant notes only itself). The system context reads
--     them (ids only: no URL, no secret) to know whom to visit; nobody else
--     writes them. A tenant's deletion cascades.

CREATE TABLE webhook_tenants (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE
);

ALTER TABLE webhook_tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_tenants_tenant ON webhook_tenants FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY webhook_tenants_system ON webhook_tenants FOR SELECT TO basalt_ctx_system
    USING (true);

GRANT SELECT, INSERT, DELETE ON webhook_tenants TO basalt_ctx_tenant;
GRANT SELECT ON webhook_tenants TO basalt_ctx_system;

-- After any change to the tenant's webhooks (in a tenant context; a cascade
-- from a tenant's deletion, in the system context, has nothing to note).
CREATE FUNCTION basalt_note_webhook_tenant() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF basalt_tenant() IS NULL THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM webhooks WHERE enabled) THEN
        INSERT INTO webhook_tenants (tenant_id) VALUES (basalt_tenant()) ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM webhook_tenants WHERE tenant_id = basalt_tenant();
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER webhooks_note_tenant
    AFTER INSERT OR DELETE OR UPDATE OF enabled ON webhooks
    FOR EACH STATEMENT EXECUTE FUNCTION basalt_note_webhook_tenant();
