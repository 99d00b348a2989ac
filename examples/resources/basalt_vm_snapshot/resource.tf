resource "basalt_vm_snapshot" "before_upgrade" {
  tenant_id = basalt_tenant.acme.id # omit to use the provider's `tenant`
  vm_id     = basalt_vm.web.id
  name      = "before-upgrade"
}
