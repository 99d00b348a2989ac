-- VM depth: a VM's description and labels, deletion protection, placement
-- groups (spread a tenant's VMs over distinct hosts of a cluster), and a
-- snapshot's description.
--
--   * placement_groups: tenant rows, RLS forced like every table; the system
--     context's policy matches nothing (a group is a tenant's, like its VMs).
--   * A VM names at most one group, of its own tenant and on its own cluster:
--     the foreign key (tenant_id, placement_group_id, cluster_id) says both, and
--     refuses to delete a group that still has members.

CREATE TABLE placement_groups (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    cluster_id  uuid NOT NULL,
    name        text NOT NULL,
    policy      text NOT NULL DEFAULT 'spread' CHECK (policy IN ('spread')),
    description text NOT NULL DEFAULT '',
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT placement_groups_tenant_name UNIQUE (tenant_id, name),
    CONSTRAINT placement_groups_tenant_id_cluster UNIQUE (tenant_id, id, cluster_id)
);
CREATE INDEX placement_groups_tenant_cluster ON placement_groups (tenant_id, cluster_id);

ALTER TABLE placement_groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE placement_groups FORCE ROW LEVEL SECURITY;
CREATE POLICY placement_groups_tenant ON placement_groups FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY placement_groups_system ON placement_groups FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);
GRANT SELECT, INSERT, UPDATE, DELETE ON placement_groups TO basalt_ctx_tenant, basalt_ctx_system;

ALTER TABLE vms
    ADD COLUMN description        text NOT NULL DEFAULT '',
    ADD COLUMN labels             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    ADD COLUMN protected          boolean NOT NULL DEFAULT false,
    ADD COLUMN placement_group_id uuid,
    ADD CONSTRAINT vms_placement_group FOREIGN KEY (tenant_id, placement_group_id, cluster_id)
        REFERENCES placement_groups (tenant_id, id, cluster_id);
CREATE INDEX vms_tenant_placement_group ON vms (tenant_id, placement_group_id);

ALTER TABLE vm_snapshots
    ADD COLUMN description text NOT NULL DEFAULT '',
    ADD COLUMN version     bigint NOT NULL DEFAULT 1,
    ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now();
