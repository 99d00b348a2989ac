# Provider staff: by the cluster's name (or `id`).
data "basalt_cluster" "gold" {
  name = "fra-kvm-01"
}

# In a tenant's context a cluster goes by its alias, without hosts; the tenant
# sees only clusters it holds a quota on.
data "basalt_cluster" "acme_gold" {
  tenant_id = basalt_tenant.acme.id # omit to look in the provider's `tenant`
  name      = "gold"
}

output "gold_hosts" {
  value = data.basalt_cluster.gold.hosts
}
