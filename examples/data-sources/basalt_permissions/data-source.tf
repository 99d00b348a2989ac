# Every permission a tenant role can hold.
data "basalt_permissions" "tenant" {
  scope = "tenant" # optional: system, tenant or cluster
}

output "tenant_permissions" {
  value = data.basalt_permissions.tenant.names
}

output "role_permissions_described" {
  value = { for p in data.basalt_permissions.tenant.permissions : p.name => p.description if startswith(p.name, "role:") }
}
