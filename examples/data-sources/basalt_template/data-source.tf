# By name: the tenant's own template of that name if there is one, else the public one.
data "basalt_template" "debian" {
  tenant_id = basalt_tenant.acme.id # omit to look in the provider's `tenant`
  name      = "debian-12"
}

output "debian_template" {
  value = "${data.basalt_template.debian.id} (public: ${data.basalt_template.debian.public})"
}
