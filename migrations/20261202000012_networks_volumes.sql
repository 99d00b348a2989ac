-- Tenant networks with address management, VM interfaces, and data volumes.
--
--   * networks: a tenant's private IPv4 network on one cluster. Overlapping
--     CIDRs of one tenant on one cluster are refused by the API (under a
--     transaction-scoped advisory lock per tenant and cluster).
--   * vm_interfaces: a VM's NIC on one of its tenant's networks, with the
--     address IPAM gave it. UNIQUE (tenant_id, network_id, ip) makes handing
--     one address out twice impossible, whatever the concurrency; the foreign
--     key to networks has no cascade, so a network with interfaces cannot go.
--   * volumes: a tenant's data disk on one cluster (a qcow2 file next to the VM
--     disks), attached to at most one VM of that cluster at a time. Its size is
--     counted in the quota's disk usage (`disk_used_gib`, within `disk_gib`,
--     NULL: no disk limit), kept by a CHECK like the other counters.

ALTER TABLE quotas
    ADD COLUMN disk_gib bigint CHECK (disk_gib BETWEEN 0 AND 1073741824),
    ADD COLUMN disk_used_gib bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT quotas_disk_within_limit CHECK (disk_used_gib >= 0 AND (disk_gib IS NULL OR disk_used_gib <= disk_gib));
GRANT UPDATE (disk_used_gib) ON quotas TO basalt_ctx_tenant;

CREATE TABLE networks (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    cluster_id  uuid NOT NULL,
    name        text NOT NULL,
    cidr        cidr NOT NULL CHECK (family(cidr) = 4 AND masklen(cidr) BETWEEN 16 AND 29),
    description text NOT NULL DEFAULT '',
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT networks_tenant_name UNIQUE (tenant_id, name),
    CONSTRAINT networks_tenant_id_id UNIQUE (tenant_id, id)
);
CREATE INDEX networks_tenant_cluster ON networks (tenant_id, cluster_id);

CREATE TABLE vm_interfaces (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    vm_id      uuid NOT NULL,
    network_id uuid NOT NULL,
    ip         inet NOT NULL CHECK (family(ip) = 4 AND masklen(ip) = 32),
    mac        macaddr NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT vm_interfaces_vm FOREIGN KEY (tenant_id, vm_id) REFERENCES vms (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT vm_interfaces_network FOREIGN KEY (tenant_id, network_id) REFERENCES networks (tenant_id, id),
    CONSTRAINT vm_interfaces_tenant_network_ip UNIQUE (tenant_id, network_id, ip),
    CONSTRAINT vm_interfaces_tenant_mac UNIQUE (tenant_id, mac)
);
CREATE INDEX vm_interfaces_tenant_vm ON vm_interfaces (tenant_id, vm_id);

CREATE TABLE volumes (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    cluster_id  uuid NOT NULL,
    name        text NOT NULL,
    size_gib    integer NOT NULL CHECK (size_gib BETWEEN 1 AND 65536),
    description text NOT NULL DEFAULT '',
    path        text NOT NULL,
    vm_id       uuid,
    -- The guest device (vdb, vdc, ...) while attached; meaningless when vm_id is NULL
    -- (a VM's deletion detaches its volumes: ON DELETE SET NULL (vm_id)).
    device      text,
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT volumes_vm FOREIGN KEY (tenant_id, vm_id) REFERENCES vms (tenant_id, id) ON DELETE SET NULL (vm_id),
    CONSTRAINT volumes_tenant_name UNIQUE (tenant_id, name),
    CONSTRAINT volumes_tenant_vm_device UNIQUE (tenant_id, vm_id, device)
);
CREATE INDEX volumes_tenant_cluster ON volumes (tenant_id, cluster_id);

-- Row-level security: a tenant's own rows; the system policies match nothing
-- and exist so that every context role has a policy on every table.
ALTER TABLE networks ENABLE ROW LEVEL SECURITY;
ALTER TABLE networks FORCE ROW LEVEL SECURITY;
CREATE POLICY networks_tenant ON networks FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY networks_system ON networks FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

ALTER TABLE vm_interfaces ENABLE ROW LEVEL SECURITY;
ALTER TABLE vm_interfaces FORCE ROW LEVEL SECURITY;
CREATE POLICY vm_interfaces_tenant ON vm_interfaces FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY vm_interfaces_system ON vm_interfaces FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

ALTER TABLE volumes ENABLE ROW LEVEL SECURITY;
ALTER TABLE volumes FORCE ROW LEVEL SECURITY;
CREATE POLICY volumes_tenant ON volumes FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY volumes_system ON volumes FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

GRANT SELECT, INSERT, UPDATE, DELETE ON networks, vm_interfaces, volumes TO basalt_ctx_system, basalt_ctx_tenant;
