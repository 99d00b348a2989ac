-- Which tenants a tenant-by-tenant job must visit: those with an enabled
-- webhook (the delivery job, every 2 s) or an enabled snapshot schedule (the
-- schedule job, every minute). Visiting every live tenant each tick made every
-- request slower as the estate grew (1.3x a tenant's list, 1.5x the staff's,
-- at 10,000 tenants: docs/performance.md).
--
--   * job_tenants: tenant rows holding nothing but the job and the tenant's id,
--     kept in step with `webhooks` and `snapshot_schedules` by statement
--     triggers that run as the caller (RLS applies inside them: a tenant notes
--     only itself). The system context reads them (ids only: no URL, no
--     secret, no schedule) to know whom to visit; nobody else writes them. A
--     tenant's deletion cascades.

CREATE TABLE job_tenants (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    job       text NOT NULL CHECK (job IN ('webhooks', 'snapshot_schedules')),
    PRIMARY KEY (tenant_id, job)
);

ALTER TABLE job_tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY job_tenants_tenant ON job_tenants FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY job_tenants_system ON job_tenants FOR SELECT TO basalt_ctx_system
    USING (true);

GRANT SELECT, INSERT, DELETE ON job_tenants TO basalt_ctx_tenant;
GRANT SELECT ON job_tenants TO basalt_ctx_system;

-- After any change to one of the tenant's job tables (named by the trigger's
-- table; each has an `enabled` flag). In the system context (a cascade from a
-- tenant's deletion) there is nothing to note.
CREATE FUNCTION basalt_note_job_tenant() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    wanted boolean;
BEGIN
    IF basalt_tenant() IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE enabled)', TG_TABLE_NAME) INTO wanted;
    IF wanted THEN
        INSERT INTO job_tenants (tenant_id, job) VALUES (basalt_tenant(), TG_TABLE_NAME) ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM job_tenants WHERE tenant_id = basalt_tenant() AND job = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER webhooks_note_tenant
    AFTER INSERT OR DELETE OR UPDATE OF enabled ON webhooks
    FOR EACH STATEMENT EXECUTE FUNCTION basalt_note_job_tenant();
CREATE TRIGGER snapshot_schedules_note_tenant
    AFTER INSERT OR DELETE OR UPDATE OF enabled ON snapshot_schedules
    FOR EACH STATEMENT EXECUTE FUNCTION basalt_note_job_tenant();
