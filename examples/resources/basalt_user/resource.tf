resource "basalt_user" "alice" {
  tenant_id = basalt_tenant.acme.id # omit to use the provider's `tenant`
  username  = "alice"
  email     = "alice@example.com"
  password  = var.alice_password # sensitive, write-only
}
