data "basalt_role" "tenant_admin" {
  tenant_id = basalt_tenant.acme.id
  name      = "tenant-admin" # built-in: 00000000-0000-7000-8000-000000000004
}

# Make alice the tenant's administrator.
resource "basalt_role_binding" "alice_admin" {
  tenant_id = basalt_tenant.acme.id
  role_id   = data.basalt_role.tenant_admin.id
  user_id   = basalt_user.alice.id
}

# Grant a custom role in the same tenant.
resource "basalt_role_binding" "alice_operator" {
  tenant_id = basalt_tenant.acme.id
  role_id   = basalt_role.operator.id
  user_id   = basalt_user.alice.id
}

data "basalt_role" "tenant_viewer" {
  tenant_id = basalt_tenant.acme.id
  name      = "tenant-viewer"
}

# Grant a role to every member of a group (exactly one of user_id, group_id).
resource "basalt_role_binding" "readers" {
  tenant_id = basalt_tenant.acme.id
  role_id   = data.basalt_role.tenant_viewer.id
  group_id  = basalt_group.readers.id
}
