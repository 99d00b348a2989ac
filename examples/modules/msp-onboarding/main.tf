# Onboards one MSP customer on one cluster: the tenant, its administrator, a
# custom operator role bound to an operator on that cluster only, the tenant's
# quota there, and optionally a first VM. Run it as provider staff (a
# system-scope token, e.g. the one `basalt-server dev` prints): the provider
# enters the new tenant by token exchange for everything inside it.

terraform {
  required_version = ">= 1.6"
  required_providers {
    basalt = { source = "basalt/basalt" }
  }
}

resource "basalt_tenant" "this" {
  name         = var.customer
  display_name = coalesce(var.display_name, var.customer)
}

# --- The customer's administrator --------------------------------------------

resource "basalt_user" "admin" {
  tenant_id = basalt_tenant.this.id
  username  = var.admin_username
  email     = var.admin_email
  password  = var.admin_password
}

data "basalt_role" "tenant_admin" {
  tenant_id = basalt_tenant.this.id
  name      = "tenant-admin"
}

# The tenant's last administrator: Basalt keeps it on destroy (a warning) until
# the tenant itself goes.
resource "basalt_role_binding" "admin" {
  tenant_id = basalt_tenant.this.id
  role_id   = data.basalt_role.tenant_admin.id
  user_id   = basalt_user.admin.id
}

# --- Capacity -----------------------------------------------------------------

resource "basalt_tenant_quota" "this" {
  tenant_id  = basalt_tenant.this.id
  cluster_id = var.cluster_id
  vcpus      = var.vcpus
  memory_mib = var.memory_mib
  max_vms    = var.max_vms
}

# --- The operator: VM and snapshot work on this one cluster --------------------

resource "basalt_role" "operator" {
  tenant_id   = basalt_tenant.this.id
  name        = "operator"
  description = "Runs VMs and snapshots on the clusters it is bound to"
  permissions = var.operator_permissions
}

resource "basalt_user" "operator" {
  tenant_id = basalt_tenant.this.id
  username  = var.operator_username
  email     = var.operator_email
  password  = var.operator_password
}

# Cluster scope: Basalt accepts the binding only once the tenant holds a quota
# on the cluster, so the cluster id comes from the quota (made first, removed last).
resource "basalt_role_binding" "operator" {
  tenant_id  = basalt_tenant.this.id
  role_id    = basalt_role.operator.id
  user_id    = basalt_user.operator.id
  cluster_id = basalt_tenant_quota.this.cluster_id
}

# --- A starter VM (only with a template) ----------------------------------------

resource "basalt_vm" "starter" {
  count = var.template_id != null ? 1 : 0

  tenant_id   = basalt_tenant.this.id
  name        = var.starter_vm_name
  cluster_id  = basalt_tenant_quota.this.cluster_id
  template_id = var.template_id
}
