# The tenant's read-only staff: everyone in the group gets the roles bound to it.
resource "basalt_group" "readers" {
  tenant_id   = basalt_tenant.acme.id
  name        = "readers"
  description = "Read-only staff"
  member_ids  = [basalt_user.alice.id] # authoritative: the group holds exactly these
}
