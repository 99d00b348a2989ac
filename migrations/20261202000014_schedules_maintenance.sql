-- Snapshot schedules and maintenance windows.
--
--   * snapshot_schedules: a tenant's rows, each bound to one VM (the foreign key
--     cascades: deleting the VM deletes its schedules). The schedule job takes a
--     snapshot of the VM every `interval_minutes` and keeps the newest `keep` of
--     the snapshots it made (vm_snapshots.schedule_id); a snapshot taken by hand
--     has no schedule and is never pruned.
--   * maintenance_windows: provider announcements about one cluster, system rows
--     (tenant_id pinned NULL) like notices. A tenant reads only the windows of
--     clusters it holds a quota on (the subquery is itself under the quotas'
--     row security, so it sees the tenant's own quotas only); none writes one.

-- Snapshot schedules -----------------------------------------------------------
CREATE TABLE snapshot_schedules (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    vm_id            uuid NOT NULL,
    name             text NOT NULL,
    description      text NOT NULL DEFAULT '',
    interval_minutes integer NOT NULL CHECK (interval_minutes BETWEEN 15 AND 10080),
    keep             integer NOT NULL CHECK (keep BETWEEN 1 AND 100),
    enabled          boolean NOT NULL DEFAULT true,
    next_run_at      timestamptz NOT NULL,
    last_run_at      timestamptz,
    last_error       text,
    version          bigint NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT snapshot_schedules_vm FOREIGN KEY (tenant_id, vm_id) REFERENCES vms (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT snapshot_schedules_tenant_name UNIQUE (tenant_id, name),
    CONSTRAINT snapshot_schedules_tenant_id UNIQUE (tenant_id, id)
);
CREATE INDEX snapshot_schedules_tenant_vm ON snapshot_schedules (tenant_id, vm_id);
-- The job looks for due schedules tenant by tenant.
CREATE INDEX snapshot_schedules_due ON snapshot_schedules (tenant_id, next_run_at) WHERE enabled;

ALTER TABLE snapshot_schedules ENABLE ROW LEVEL SECURITY;
ALTER TABLE snapshot_schedules FORCE ROW LEVEL SECURITY;
CREATE POLICY snapshot_schedules_tenant ON snapshot_schedules FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY snapshot_schedules_system ON snapshot_schedules FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);
GRANT SELECT, INSERT, UPDATE, DELETE ON snapshot_schedules TO basalt_ctx_tenant, basalt_ctx_system;

-- Which schedule took a snapshot (NULL: taken by hand); only those are pruned.
-- Deleting a schedule keeps its snapshots (they become hand-made ones).
ALTER TABLE vm_snapshots
    ADD COLUMN schedule_id uuid,
    ADD CONSTRAINT vm_snapshots_schedule FOREIGN KEY (tenant_id, schedule_id)
        REFERENCES snapshot_schedules (tenant_id, id) ON DELETE SET NULL (schedule_id);
CREATE INDEX vm_snapshots_tenant_schedule ON vm_snapshots (tenant_id, schedule_id, created_at)
    WHERE schedule_id IS NOT NULL;

-- Maintenance windows ----------------------------------------------------------
CREATE TABLE maintenance_windows (
    id          uuid PRIMARY KEY,
    tenant_id   uuid CHECK (tenant_id IS NULL),
    cluster_id  uuid NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    title       text NOT NULL,
    description text NOT NULL DEFAULT '',
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    state       text NOT NULL DEFAULT 'scheduled' CHECK (state IN ('scheduled', 'cancelled')),
    created_by  uuid,
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT maintenance_windows_window CHECK (ends_at > starts_at AND ends_at <= starts_at + interval '7 days')
);
CREATE INDEX maintenance_windows_tenant_cluster ON maintenance_windows (tenant_id, cluster_id, starts_at);

ALTER TABLE maintenance_windows ENABLE ROW LEVEL SECURITY;
ALTER TABLE maintenance_windows FORCE ROW LEVEL SECURITY;
CREATE POLICY maintenance_windows_system ON maintenance_windows FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);
-- A tenant reads the windows of the clusters it holds a quota on; none writes one.
CREATE POLICY maintenance_windows_tenant_read ON maintenance_windows FOR SELECT TO basalt_ctx_tenant
    USING (tenant_id IS NULL AND cluster_id IN (SELECT q.cluster_id FROM quotas q WHERE q.tenant_id = basalt_tenant()));

GRANT SELECT, INSERT, UPDATE, DELETE ON maintenance_windows TO basalt_ctx_system;
GRANT SELECT ON maintenance_windows TO basalt_ctx_tenant;
