# What acme's VMs on the "gold" cluster may use together (provider staff only;
# the provider assigns it at system scope, without entering the tenant).
resource "basalt_tenant_quota" "acme_gold" {
  tenant_id  = basalt_tenant.acme.id
  cluster_id = basalt_cluster.gold.id
  vcpus      = 32
  memory_mib = 65536
  max_vms    = 10
  disk_gib   = 500 # data volumes; omit for no limit
}
