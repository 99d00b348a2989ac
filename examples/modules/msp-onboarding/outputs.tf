output "tenant_id" {
  description = "The customer's tenant."
  value       = basalt_tenant.this.id
}

output "admin_user_id" {
  description = "The customer's administrator (tenant-admin)."
  value       = basalt_user.admin.id
}

output "operator_user_id" {
  description = "The operator, bound to the `operator` role on `cluster_id`."
  value       = basalt_user.operator.id
}

output "operator_role_id" {
  description = "The custom `operator` role."
  value       = basalt_role.operator.id
}

output "operator_binding_id" {
  description = "The operator's cluster-scoped role binding."
  value       = basalt_role_binding.operator.id
}

output "quota_id" {
  description = "The customer's quota on `cluster_id`."
  value       = basalt_tenant_quota.this.id
}

output "vm_id" {
  description = "The starter VM, or null without `template_id`."
  value       = one(basalt_vm.starter[*].id)
}
