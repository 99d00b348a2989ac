data "basalt_tenant" "acme" {
  name = "acme"
}

output "acme_id" {
  value = data.basalt_tenant.acme.id
}
