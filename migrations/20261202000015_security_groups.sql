-- Security groups: a tenant's named sets of allow rules on one cluster, and
-- which VMs of that cluster they apply to.
--
--   * security_groups: name and description only; UNIQUE (tenant_id, name).
--   * security_group_rules: direction, protocol, port range (tcp/udp only,
--     1..65535, from <= to) and remote CIDR (IPv4 or IPv6), normalised by the
--     API so that one rule has one spelling; the unique index then makes a
--     duplicate impossible whatever the concurrency (NULL ports of icmp/any
--     rules compare equal). The API bounds a group to 100 rules.
--   * vm_security_groups: a VM's membership in a group of its tenant on its
--     cluster. A VM's deletion takes its memberships with it; a group with
--     members cannot be deleted (no cascade on that foreign key).
--
-- Nothing enforces the rules on the hosts yet (see docs/compute.md).

CREATE TABLE security_groups (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    cluster_id  uuid NOT NULL,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT security_groups_tenant_name UNIQUE (tenant_id, name),
    CONSTRAINT security_groups_tenant_id_id UNIQUE (tenant_id, id)
);
CREATE INDEX security_groups_tenant_cluster ON security_groups (tenant_id, cluster_id);

CREATE TABLE security_group_rules (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    security_group_id uuid NOT NULL,
    direction         text NOT NULL CHECK (direction IN ('ingress', 'egress')),
    protocol          text NOT NULL CHECK (protocol IN ('tcp', 'udp', 'icmp', 'any')),
    port_from         integer,
    port_to           integer,
    remote_cidr       cidr NOT NULL,
    description       text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT security_group_rules_ports CHECK (
        CASE WHEN protocol IN ('tcp', 'udp')
             THEN port_from BETWEEN 1 AND 65535 AND port_to BETWEEN port_from AND 65535
             ELSE port_from IS NULL AND port_to IS NULL END),
    CONSTRAINT security_group_rules_group FOREIGN KEY (tenant_id, security_group_id)
        REFERENCES security_groups (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT security_group_rules_unique UNIQUE NULLS NOT DISTINCT
        (tenant_id, security_group_id, direction, protocol, port_from, port_to, remote_cidr)
);

CREATE TABLE vm_security_groups (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    vm_id             uuid NOT NULL,
    security_group_id uuid NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT vm_security_groups_vm FOREIGN KEY (tenant_id, vm_id) REFERENCES vms (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT vm_security_groups_group FOREIGN KEY (tenant_id, security_group_id)
        REFERENCES security_groups (tenant_id, id),
    CONSTRAINT vm_security_groups_unique UNIQUE (tenant_id, vm_id, security_group_id)
);
CREATE INDEX vm_security_groups_tenant_group ON vm_security_groups (tenant_id, security_group_id);

-- Row-level security: a tenant's own rows; the system policies match nothing
-- and exist so that every context role has a policy on every table.
ALTER TABLE security_groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE security_groups FORCE ROW LEVEL SECURITY;
CREATE POLICY security_groups_tenant ON security_groups FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY security_groups_system ON security_groups FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

ALTER TABLE security_group_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE security_group_rules FORCE ROW LEVEL SECURITY;
CREATE POLICY security_group_rules_tenant ON security_group_rules FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY security_group_rules_system ON security_group_rules FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

ALTER TABLE vm_security_groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE vm_security_groups FORCE ROW LEVEL SECURITY;
CREATE POLICY vm_security_groups_tenant ON vm_security_groups FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY vm_security_groups_system ON vm_security_groups FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

GRANT SELECT, INSERT, UPDATE, DELETE ON security_groups, security_group_rules, vm_security_groups
    TO basalt_ctx_system, basalt_ctx_tenant;
