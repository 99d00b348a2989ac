resource "basalt_role" "operator" {
  tenant_id   = basalt_tenant.acme.id
  name        = "operator"
  description = "Reads users and the audit trail"
  # Names from the catalog (data source basalt_permissions); checked at plan time.
  permissions = ["user:list", "user:read", "audit:read"]
}
