-- Provider operations: quota requests, publishing public templates, notices,
-- console session revocation, and cancelling an operation.
--
--   * quota_requests: a tenant's rows (a tenant asks for capacity on a cluster it
--     holds a quota on). Like quotas, the one kind of tenant row the system
--     context reads and updates across tenants: provider staff decide requests.
--     Tenants insert their own and may update their own (cancel); nobody deletes.
--   * templates.published: a public template can be withdrawn from tenants. The
--     tenant read policy hides unpublished public templates, so a tenant neither
--     lists nor reads nor builds a VM from one; VMs keep their reference (no FK).
--   * notices: provider announcements, system rows (tenant_id pinned NULL) that
--     every tenant reads and none writes, like public templates.
--   * console_tickets: a ticket (and the session it opened) can be revoked; the
--     websocket notes when it closed.
--   * operations: a cancellation request, honoured by work that can stop safely.

-- Quota requests -------------------------------------------------------------
CREATE TABLE quota_requests (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    cluster_id      uuid NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    vcpus           integer NOT NULL CHECK (vcpus BETWEEN 0 AND 100000),
    memory_mib      bigint NOT NULL CHECK (memory_mib BETWEEN 0 AND 1073741824),
    max_vms         integer NOT NULL CHECK (max_vms BETWEEN 0 AND 10000),
    reason          text NOT NULL DEFAULT '',
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'approved', 'rejected', 'cancelled')),
    requested_by    uuid NOT NULL,
    decided_by      uuid,
    decision_reason text NOT NULL DEFAULT '',
    decided_at      timestamptz,
    quota_id        uuid,
    version         bigint NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT quota_requests_decided CHECK ((state = 'pending') = (decided_at IS NULL))
);
CREATE INDEX quota_requests_tenant_state ON quota_requests (tenant_id, state);
-- One open request per tenant and cluster: a second answers 409 until it is decided.
CREATE UNIQUE INDEX quota_requests_one_pending ON quota_requests (tenant_id, cluster_id) WHERE state = 'pending';

ALTER TABLE quota_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE quota_requests FORCE ROW LEVEL SECURITY;
-- Provider staff read and decide every tenant's requests (privileges: no insert, no delete).
CREATE POLICY quota_requests_system ON quota_requests FOR ALL TO basalt_ctx_system
    USING (true) WITH CHECK (true);
CREATE POLICY quota_requests_tenant_read ON quota_requests FOR SELECT TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant());
CREATE POLICY quota_requests_tenant_insert ON quota_requests FOR INSERT TO basalt_ctx_tenant
    WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY quota_requests_tenant_update ON quota_requests FOR UPDATE TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());

GRANT SELECT, UPDATE ON quota_requests TO basalt_ctx_system;
GRANT SELECT, INSERT, UPDATE ON quota_requests TO basalt_ctx_tenant;

-- Publishing public templates ----------------------------------------------------
ALTER TABLE templates
    ADD COLUMN published boolean NOT NULL DEFAULT true,
    ADD CONSTRAINT templates_published_public CHECK (published OR tenant_id IS NULL);

DROP POLICY templates_tenant_read ON templates;
CREATE POLICY templates_tenant_read ON templates FOR SELECT TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant() OR (tenant_id IS NULL AND published));

-- Notices ----------------------------------------------------------------------
CREATE TABLE notices (
    id         uuid PRIMARY KEY,
    tenant_id  uuid CHECK (tenant_id IS NULL),
    title      text NOT NULL,
    body       text NOT NULL DEFAULT '',
    severity   text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz,
    region_id  uuid REFERENCES regions (id) ON DELETE CASCADE,
    created_by uuid,
    version    bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notices_window CHECK (ends_at IS NULL OR ends_at > starts_at)
);
CREATE INDEX notices_tenant_starts ON notices (tenant_id, starts_at);

ALTER TABLE notices ENABLE ROW LEVEL SECURITY;
ALTER TABLE notices FORCE ROW LEVEL SECURITY;
CREATE POLICY notices_system ON notices FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);
-- Every tenant reads every notice (estate-wide announcements); none writes one.
CREATE POLICY notices_tenant_read ON notices FOR SELECT TO basalt_ctx_tenant
    USING (tenant_id IS NULL);

GRANT SELECT, INSERT, UPDATE, DELETE ON notices TO basalt_ctx_system;
GRANT SELECT ON notices TO basalt_ctx_tenant;

-- Console sessions -------------------------------------------------------------
ALTER TABLE console_tickets
    ADD COLUMN revoked_at timestamptz,
    ADD COLUMN revoked_by uuid,
    ADD COLUMN closed_at  timestamptz;

-- Cancelling operations -------------------------------------------------------
ALTER TABLE operations ADD COLUMN cancel_requested_at timestamptz;
