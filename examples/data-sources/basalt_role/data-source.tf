# Built-in roles (tenant-admin, tenant-operator, tenant-viewer, auditor, ...) and
# the tenant's custom roles, by name.
data "basalt_role" "viewer" {
  tenant_id = basalt_tenant.acme.id # omit to search the provider's `tenant`
  name      = "tenant-viewer"
}

output "viewer_permissions" {
  value = data.basalt_role.viewer.permissions
}
