data "basalt_regions" "all" {}

output "region_names" {
  value = data.basalt_regions.all.names
}

output "unhealthy_regions" {
  value = [for r in data.basalt_regions.all.regions : r.name if r.health != "healthy"]
}
