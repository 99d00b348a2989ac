-- Webhooks: a tenant's subscriptions to its own audit events, delivered as signed
-- HTTP POSTs by a background job (server/src/webhooks/).
--
--   * webhooks: tenant rows (held by the global controller, like groups). The
--     signing secret is stored ENCRYPTED (XChaCha20-Poly1305 under the server's
--     webhook key, the webhook's id as associated data): the server must sign,
--     so it cannot keep only a hash. `cursor_event_id` is the last audit event
--     the job has considered for this webhook (audit ids are UUIDv7: time order).
--   * webhook_deliveries: one row per event (or ping, or redelivery) to send,
--     with its body, its state and the outcome of its last attempt.
--
-- Both RLS-forced like every tenant table; the system context sees none of them.

CREATE TABLE webhooks (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url             text NOT NULL,
    events          text[] NOT NULL,
    description     text NOT NULL DEFAULT '',
    enabled         boolean NOT NULL DEFAULT true,
    secret_sealed   bytea NOT NULL,
    cursor_event_id uuid NOT NULL,
    version         bigint NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhooks_tenant_id_id UNIQUE (tenant_id, id)
);

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    webhook_id       uuid NOT NULL,
    event_id         uuid,
    event_type       text NOT NULL,
    redelivery_of    uuid,
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status_code integer,
    last_error       text,
    last_duration_ms bigint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_webhook FOREIGN KEY (tenant_id, webhook_id)
        REFERENCES webhooks (tenant_id, id) ON DELETE CASCADE
);
-- The job's queue, and one delivery per (webhook, event) however often it scans.
CREATE INDEX webhook_deliveries_tenant_due ON webhook_deliveries (tenant_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_tenant_webhook ON webhook_deliveries (tenant_id, webhook_id, id);
CREATE UNIQUE INDEX webhook_deliveries_tenant_event ON webhook_deliveries (tenant_id, webhook_id, event_id)
    WHERE event_id IS NOT NULL AND redelivery_of IS NULL;

ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks FORCE ROW LEVEL SECURITY;
CREATE POLICY webhooks_tenant ON webhooks FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
-- The system context's policy matches nothing (webhooks are tenants'), as for groups.
CREATE POLICY webhooks_system ON webhooks FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_deliveries_tenant ON webhook_deliveries FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
CREATE POLICY webhook_deliveries_system ON webhook_deliveries FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

GRANT SELECT, INSERT, UPDATE, DELETE ON webhooks, webhook_deliveries TO basalt_ctx_tenant, basalt_ctx_system;
