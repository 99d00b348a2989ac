data "basalt_current_user" "me" {}

output "whoami" {
  value = "${data.basalt_current_user.me.username} (${data.basalt_current_user.me.scope})"
}

output "can_create_tenants" {
  value = contains(data.basalt_current_user.me.permissions, "tenant:create")
}
