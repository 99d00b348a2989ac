-- Compute: regions, clusters, hosts and placements (the provider's estate, system
-- rows), quotas (a tenant's capacity on a cluster), templates (public or a
-- tenant's), VMs, snapshots and operations (a tenant's).
--
-- Who sees what:
--   * The estate (regions, clusters, hosts, placements) is system data
--     (tenant_id IS NULL, pinned by CHECK). Tenants read region names, and the
--     clusters they hold a quota on; never hosts or placements (white-label: a
--     tenant never learns a host name or a libvirt URI, not even in SQL).
--   * Quotas are the tenant's rows, and the one table the system context reads
--     and writes across tenants: provider staff assign capacity to customers.
--     Tenants read theirs and may change only the usage counters (column
--     privileges), which CHECK constraints keep within the limits, so concurrent
--     creates can never exceed a quota: the row lock serialises them and the
--     CHECK refuses the one that does not fit.
--   * Templates: a tenant reads its own and the public ones (system rows).
--   * VMs, snapshots, operations: a tenant's own, nothing else.

-- Regions --------------------------------------------------------------------
CREATE TABLE regions (
    id         uuid PRIMARY KEY,
    tenant_id  uuid CHECK (tenant_id IS NULL),
    name       text NOT NULL,
    endpoint   text NOT NULL,
    health     text NOT NULL DEFAULT 'unknown'
               CHECK (health IN ('healthy', 'degraded', 'unreachable', 'unknown')),
    version    bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT regions_tenant_name UNIQUE NULLS NOT DISTINCT (tenant_id, name)
);

-- Clusters -------------------------------------------------------------------
CREATE TABLE clusters (
    id         uuid PRIMARY KEY,
    tenant_id  uuid CHECK (tenant_id IS NULL),
    region_id  uuid NOT NULL REFERENCES regions (id),
    name       text NOT NULL,
    alias      text NOT NULL,
    version    bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT clusters_tenant_name UNIQUE NULLS NOT DISTINCT (tenant_id, name)
);
CREATE INDEX clusters_tenant_region ON clusters (tenant_id, region_id);

-- Hosts: schedulable capacity is read from the host when it joins.
CREATE TABLE hosts (
    id          uuid PRIMARY KEY,
    tenant_id   uuid CHECK (tenant_id IS NULL),
    cluster_id  uuid NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    position    integer NOT NULL,
    uri         text NOT NULL,
    state       text NOT NULL DEFAULT 'up' CHECK (state IN ('up', 'unreachable', 'draining')),
    vcpus       integer NOT NULL CHECK (vcpus >= 0),
    memory_mib  bigint NOT NULL CHECK (memory_mib >= 0),
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT hosts_tenant_uri UNIQUE NULLS NOT DISTINCT (tenant_id, uri)
);
CREATE INDEX hosts_tenant_cluster ON hosts (tenant_id, cluster_id);

-- Placements: which VM runs on which host, with what it reserves there. System
-- rows naming only the VM's id, so host usage is known without reading any
-- tenant's data.
CREATE TABLE placements (
    id         uuid PRIMARY KEY,
    tenant_id  uuid CHECK (tenant_id IS NULL),
    host_id    uuid NOT NULL REFERENCES hosts (id),
    vm_id      uuid NOT NULL,
    vcpus      integer NOT NULL CHECK (vcpus > 0),
    memory_mib bigint NOT NULL CHECK (memory_mib > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT placements_tenant_vm UNIQUE NULLS NOT DISTINCT (tenant_id, vm_id)
);
CREATE INDEX placements_tenant_host ON placements (tenant_id, host_id);

-- Quotas ---------------------------------------------------------------------
CREATE TABLE quotas (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    cluster_id      uuid NOT NULL REFERENCES clusters (id),
    vcpus           integer NOT NULL CHECK (vcpus BETWEEN 0 AND 100000),
    memory_mib      bigint NOT NULL CHECK (memory_mib BETWEEN 0 AND 1073741824),
    max_vms         integer NOT NULL CHECK (max_vms BETWEEN 0 AND 10000),
    vcpus_used      integer NOT NULL DEFAULT 0,
    memory_used_mib bigint NOT NULL DEFAULT 0,
    vms_used        integer NOT NULL DEFAULT 0,
    version         bigint NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT quotas_tenant_cluster UNIQUE (tenant_id, cluster_id),
    CONSTRAINT quotas_within_limits CHECK (
        vcpus_used BETWEEN 0 AND vcpus AND memory_used_mib BETWEEN 0 AND memory_mib AND vms_used BETWEEN 0 AND max_vms)
);

-- Templates ------------------------------------------------------------------
CREATE TABLE templates (
    id         uuid PRIMARY KEY,
    tenant_id  uuid REFERENCES tenants (id) ON DELETE CASCADE,
    name       text NOT NULL,
    vcpus      integer NOT NULL CHECK (vcpus BETWEEN 1 AND 256),
    memory_mib bigint NOT NULL CHECK (memory_mib BETWEEN 64 AND 1048576),
    disk_gib   integer NOT NULL CHECK (disk_gib BETWEEN 1 AND 65536),
    image      text NOT NULL DEFAULT '',
    version    bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT templates_tenant_name UNIQUE NULLS NOT DISTINCT (tenant_id, name)
);

-- VMs ------------------------------------------------------------------------
CREATE TABLE vms (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL,
    cluster_id   uuid NOT NULL,
    template_id  uuid NOT NULL,
    vcpus        integer NOT NULL CHECK (vcpus BETWEEN 1 AND 256),
    memory_mib   bigint NOT NULL CHECK (memory_mib BETWEEN 64 AND 1048576),
    state        text NOT NULL CHECK (state IN ('creating', 'stopped', 'starting', 'running', 'stopping',
                                                'suspended', 'migrating', 'failed', 'deleting')),
    power_state  text NOT NULL CHECK (power_state IN ('running', 'stopped')),
    operation_id uuid,
    disk_path    text,
    version      bigint NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT vms_tenant_name UNIQUE (tenant_id, name),
    CONSTRAINT vms_tenant_id_id UNIQUE (tenant_id, id)
);
CREATE INDEX vms_tenant_cluster ON vms (tenant_id, cluster_id);

CREATE TABLE vm_snapshots (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    vm_id      uuid NOT NULL,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT vm_snapshots_vm FOREIGN KEY (tenant_id, vm_id) REFERENCES vms (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT vm_snapshots_tenant_vm_name UNIQUE (tenant_id, vm_id, name)
);

-- Operations: long work answered with 202 and polled.
CREATE TABLE operations (
    id          uuid PRIMARY KEY,
    tenant_id   uuid REFERENCES tenants (id) ON DELETE CASCADE,
    kind        text NOT NULL,
    target_type text NOT NULL,
    target_id   uuid NOT NULL,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
    progress    integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    error       jsonb,
    -- What the runner needs to resume or undo the work after a crash.
    params      jsonb NOT NULL DEFAULT '{}',
    actor_id    uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX operations_tenant_target ON operations (tenant_id, target_id);

-- Row-level security ---------------------------------------------------------
ALTER TABLE regions ENABLE ROW LEVEL SECURITY;
ALTER TABLE regions FORCE ROW LEVEL SECURITY;
CREATE POLICY regions_system ON regions FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);
-- Tenants read region rows (the API shows them name and availability only).
CREATE POLICY regions_tenant_read ON regions FOR SELECT TO basalt_ctx_tenant
    USING (tenant_id IS NULL);

ALTER TABLE clusters ENABLE ROW LEVEL SECURITY;
ALTER TABLE clusters FORCE ROW LEVEL SECURITY;
CREATE POLICY clusters_system ON clusters FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);
-- A tenant sees a cluster once it holds a quota on it.
CREATE POLICY clusters_tenant_read ON clusters FOR SELECT TO basalt_ctx_tenant
    USING (id IN (SELECT q.cluster_id FROM quotas q WHERE q.tenant_id = basalt_tenant()));

ALTER TABLE hosts ENABLE ROW LEVEL SECURITY;
ALTER TABLE hosts FORCE ROW LEVEL SECURITY;
CREATE POLICY hosts_system ON hosts FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

ALTER TABLE placements ENABLE ROW LEVEL SECURITY;
ALTER TABLE placements FORCE ROW LEVEL SECURITY;
CREATE POLICY placements_system ON placements FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

ALTER TABLE quotas ENABLE ROW LEVEL SECURITY;
ALTER TABLE quotas FORCE ROW LEVEL SECURITY;
-- Provider staff assign capacity to every tenant.
CREATE POLICY quotas_system ON quotas FOR ALL TO basalt_ctx_system
    USING (true) WITH CHECK (true);
CREATE POLICY quotas_tenant_read ON quotas FOR SELECT TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant());
CREATE POLICY quotas_tenant_usage ON quotas FOR UPDATE TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());

ALTER TABLE templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE templates FORCE ROW LEVEL SECURITY;
CREATE POLICY templates_system ON templates FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);
CREATE POLICY templates_tenant_read ON templates FOR SELECT TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant() OR tenant_id IS NULL);
CREATE POLICY templates_tenant_insert ON templates FOR INSERT TO basalt_ctx_tenant
    WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY templates_tenant_update ON templates FOR UPDATE TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY templates_tenant_delete ON templates FOR DELETE TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant());

ALTER TABLE vms ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms FORCE ROW LEVEL SECURITY;
CREATE POLICY vms_tenant ON vms FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
-- VMs always belong to a tenant: the system policy matches nothing, and exists
-- so that every context role has a policy on every table.
CREATE POLICY vms_system ON vms FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

ALTER TABLE vm_snapshots ENABLE ROW LEVEL SECURITY;
ALTER TABLE vm_snapshots FORCE ROW LEVEL SECURITY;
CREATE POLICY vm_snapshots_tenant ON vm_snapshots FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY vm_snapshots_system ON vm_snapshots FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

ALTER TABLE operations ENABLE ROW LEVEL SECURITY;
ALTER TABLE operations FORCE ROW LEVEL SECURITY;
CREATE POLICY operations_tenant ON operations FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY operations_system ON operations FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

-- Privileges: only the context roles, and only what each needs.
GRANT SELECT, INSERT, UPDATE, DELETE ON regions, clusters, hosts, placements, quotas, templates
    TO basalt_ctx_system;
GRANT SELECT, INSERT, UPDATE, DELETE ON vms, vm_snapshots, operations TO basalt_ctx_system, basalt_ctx_tenant;
GRANT SELECT ON regions, clusters, quotas TO basalt_ctx_tenant;
GRANT SELECT, INSERT, UPDATE, DELETE ON templates TO basalt_ctx_tenant;
GRANT UPDATE (vcpus_used, memory_used_mib, vms_used) ON quotas TO basalt_ctx_tenant;
