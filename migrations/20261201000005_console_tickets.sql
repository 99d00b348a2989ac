-- Console tickets: short-lived, single-use credentials for a VM's serial console
-- websocket (a browser cannot put a bearer token on a websocket upgrade). Only
-- SHA-256(secret) is stored. A ticket names its tenant in its own text, so the
-- websocket route enters that tenant's context and looks the ticket up there,
-- with the same forced RLS as everything else.

CREATE TABLE console_tickets (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    vm_id         uuid NOT NULL,
    user_id       uuid NOT NULL,
    secret_sha256 bytea NOT NULL,
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT console_tickets_vm FOREIGN KEY (tenant_id, vm_id) REFERENCES vms (tenant_id, id) ON DELETE CASCADE
);

ALTER TABLE console_tickets ENABLE ROW LEVEL SECURITY;
ALTER TABLE console_tickets FORCE ROW LEVEL SECURITY;
CREATE POLICY console_tickets_tenant ON console_tickets FOR ALL TO basalt_ctx_tenant
    USING (tenant_id = basalt_tenant()) WITH CHECK (tenant_id = basalt_tenant());
-- Tickets always belong to a tenant; the system policy matches nothing.
CREATE POLICY console_tickets_system ON console_tickets FOR ALL TO basalt_ctx_system
    USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL);

GRANT SELECT, INSERT, UPDATE, DELETE ON console_tickets TO basalt_ctx_tenant, basalt_ctx_system;
