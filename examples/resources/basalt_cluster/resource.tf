# A cluster of two KVM hosts (provider staff only). Tenants see it as "gold".
resource "basalt_cluster" "gold" {
  name   = "fra-kvm-01"
  region = basalt_region.eu_west.name # the region's name; omit while there is only one region
  hosts = [
    "qemu+ssh://root@kvm1.example.com/system",
    "qemu+ssh://root@kvm2.example.com/system",
  ]
  alias = "gold" # the name tenants see; defaults to `name`
}

# libvirt's test driver, for trying Basalt out without hypervisors.
resource "basalt_cluster" "lab" {
  name  = "lab"
  hosts = ["test:///default"]
}
