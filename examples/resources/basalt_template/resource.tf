# A public template: made with a system-scope token and no provider `tenant`,
# every tenant can use it. Only public templates name a base image.
resource "basalt_template" "debian" {
  name       = "debian-12"
  vcpus      = 2
  memory_mib = 2048
  disk_gib   = 20
  image      = "/var/lib/basalt/images/debian-12.qcow2"
}

# A tenant's own (private) template.
resource "basalt_template" "acme_small" {
  tenant_id  = basalt_tenant.acme.id # omit to use the provider's `tenant`
  name       = "small"
  vcpus      = 1
  memory_mib = 512
}
