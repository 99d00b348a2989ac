resource "basalt_vm" "web" {
  tenant_id = basalt_tenant.acme.id # omit to use the provider's `tenant`
  name      = "web-1"
  # Through the quota: the quota is made before the VM and removed after it.
  cluster_id  = basalt_tenant_quota.acme_gold.cluster_id
  template_id = basalt_template.debian.id
  vcpus       = 4         # optional: the template's; a change resizes in place (restarting it)
  memory_mib  = 4096      # optional: the template's
  power_state = "running" # or "stopped"

  timeouts {
    create = "20m" # each defaults to 10m
    update = "15m"
    delete = "10m"
  }
}
