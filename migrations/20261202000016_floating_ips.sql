-- Public IP pools (the provider's) and floating IPs (tenants' addresses from them).
--
--   * ip_pools: system rows (tenant_id pinned NULL), one cluster each: an IPv4
--     CIDR (/20 to /30) and an optional gateway inside it. Pools of one cluster
--     do not overlap (checked by the API under a transaction-scoped advisory
--     lock per cluster). Provider staff manage them. A tenant context may read
--     the pools of the clusters it holds a quota on (like clusters), because
--     allocating needs their range; the API never shows them to tenants.
--   * floating_ips: a tenant's address from a pool of a cluster, optionally
--     mapped to one of its VMs on that cluster. A tenant sees only its own
--     rows. UNIQUE (ip_pool_id, address) spans tenants: Postgres checks a
--     unique index whatever RLS shows, so an address is held once, whatever the
--     concurrency, and a tenant learns nothing of the others' rows.
--     basalt_claim_floating_ip() walks the pool's host addresses in order and
--     inserts the first that the index accepts (ON CONFLICT DO NOTHING waits
--     for a concurrent claim of the same address and then moves on).
--     The foreign key to ip_pools has no cascade: a pool with allocations
--     cannot be deleted. A VM's deletion detaches its floating IP and keeps it.

CREATE TABLE ip_pools (
    id          uuid PRIMARY KEY,
    tenant_id   uuid CHECK (tenant_id IS NULL),
    cluster_id  uuid NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    name        text NOT NULL,
    cidr        cidr NOT NULL CHECK (family(cidr) = 4 AND masklen(cidr) BETWEEN 20 AND 30),
    gateway     inet CHECK (gateway IS NULL OR (family(gateway) = 4 AND masklen(gateway) = 32 AND gateway << cidr)),
    description text NOT NULL DEFAULT '',
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ip_pools_tenant_name UNIQUE NULLS NOT DISTINCT (tenant_id, name)
);
CREATE INDEX ip_pools_tenant_cluster ON ip_pools (tenant_id, cluster_id);

CREATE TABLE floating_ips (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    cluster_id  uuid NOT NULL,
    ip_pool_id  uuid NOT NULL REFERENCES ip_pools (id),
    address     inet NOT NULL CHECK (family(address) = 4 AND masklen(address) = 32),
    vm_id       uuid,
    description text NOT NULL DEFAULT '',
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT floating_ips_vm FOREIGN KEY (tenant_id, vm_id) REFERENCES vms (tenant_id, id) ON DELETE SET NULL (vm_id),
    -- One floating IP per VM (NULLs, the detached ones, are distinct).
    CONSTRAINT floating_ips_tenant_vm UNIQUE (tenant_id, vm_id)
);
-- An address of a pool is held by one tenant at a time, across tenants.
CREATE UNIQUE INDEX floating_ips_pool_address ON floating_ips (ip_pool_id, address);
CREATE INDEX floating_ips_tenant_cluster ON floating_ips (tenant_id, cluster_id);

ALTER TABLE ip_pools ENABLE ROW LEVEL SECURITY;
ALTER TABLE ip_pools FORCE ROW LEVEL SECURITY;
CREATE POLICY ip_pools_system ON ip_pools FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);
-- A tenant reads the pools of the clusters it holds a quota on (to allocate).
CREATE POLICY ip_pools_tenant_read ON ip_pools FOR SELECT TO basalt_ctx_tenant
    USING (cluster_id IN (SELECT q.cluster_id FROM quotas q WHERE q.tenant_id = basalt_tenant()));

ALTER TABLE floating_ips ENABLE ROW LEVEL SECURITY;
ALTER TABLE floating_ips FORCE ROW LEVEL SECURITY;
CREATE POLICY floating_ips_tenant ON floating_ips FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
-- Floating IPs always belong to a tenant: the system policy matches nothing.
CREATE POLICY floating_ips_system ON floating_ips FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

GRANT SELECT, INSERT, UPDATE, DELETE ON ip_pools TO basalt_ctx_system;
GRANT SELECT ON ip_pools TO basalt_ctx_tenant;
GRANT SELECT, INSERT, UPDATE, DELETE ON floating_ips TO basalt_ctx_system, basalt_ctx_tenant;

-- Claims an address of pool p_pool for the current tenant as floating IP p_id:
-- p_address if given (the caller checked it is a host address of the pool;
-- NULL if it is taken), else the lowest free host address (never the network,
-- broadcast or gateway address; NULL if none is left). Runs as the caller
-- (SECURITY INVOKER): RLS and the unique index decide.
CREATE FUNCTION basalt_claim_floating_ip(p_id uuid, p_pool uuid, p_address inet, p_description text)
    RETURNS inet LANGUAGE plpgsql AS $$
DECLARE
    v_pool ip_pools%ROWTYPE;
    v_candidate inet;
    v_claimed inet;
BEGIN
    SELECT * INTO v_pool FROM ip_pools WHERE id = p_pool;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    FOR i IN 1 .. (1::bigint << (32 - masklen(v_pool.cidr))) - 2 LOOP
        v_candidate := coalesce(p_address, set_masklen(v_pool.cidr + i, 32));
        CONTINUE WHEN v_candidate IS NOT DISTINCT FROM v_pool.gateway;
        INSERT INTO floating_ips (id, tenant_id, cluster_id, ip_pool_id, address, description)
        VALUES (p_id, basalt_tenant(), v_pool.cluster_id, p_pool, v_candidate, p_description)
        ON CONFLICT (ip_pool_id, address) DO NOTHING
        RETURNING address INTO v_claimed;
        IF v_claimed IS NOT NULL OR p_address IS NOT NULL THEN
            RETURN v_claimed;
        END IF;
    END LOOP;
    RETURN NULL;
END $$;
