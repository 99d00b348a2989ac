-- Server instances: which processes are alive, so replicas can tell an operation
-- whose process died from one another replica is still running.
--
--   * server_instances: one row per running basalt-server process (its instance
--     id, random at start), with a heartbeat every few seconds. An instance whose
--     heartbeat is older than the lease is dead; a clean shutdown deletes its row.
--   * operations.instance_id: the process that runs the operation's work. The
--     reconciler settles pending/running operations of dead instances only, so a
--     replica starting (or restarting) never fails another replica's work, and a
--     survivor takes over what a killed replica left.
--
-- System rows only, RLS-forced like every table; only the system context sees them.

CREATE TABLE server_instances (
    id           uuid PRIMARY KEY,
    tenant_id    uuid CHECK (tenant_id IS NULL),
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX server_instances_tenant_heartbeat ON server_instances (tenant_id, heartbeat_at);

ALTER TABLE server_instances ENABLE ROW LEVEL SECURITY;
ALTER TABLE server_instances FORCE ROW LEVEL SECURITY;
CREATE POLICY server_instances_system ON server_instances FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);
GRANT SELECT, INSERT, UPDATE, DELETE ON server_instances TO basalt_ctx_system;

-- Operations recorded before this migration have no instance: they are treated
-- as a dead instance's (their process is gone: the schema changed under it).
ALTER TABLE operations ADD COLUMN instance_id uuid;
CREATE INDEX operations_active_instance ON operations (tenant_id, instance_id) WHERE status IN ('pending', 'running');
