resource "basalt_tenant" "acme" {
  name         = "acme"
  display_name = "Acme Corp"
  state        = "active" # or "suspended"
}
