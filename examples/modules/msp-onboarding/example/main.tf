# Onboards the customer "acme" on the dev server's `default` cluster, with a
# starter VM from a public template. With `basalt-server dev` running:
#
#   scripts/tf -chdir=examples/modules/msp-onboarding/example apply
#   scripts/tf -chdir=examples/modules/msp-onboarding/example destroy
#
# (scripts/tf installs the local module with `terraform get`; plain Terraform
# needs `terraform get` once, not `terraform init`, under dev_overrides.)

terraform {
  required_version = ">= 1.6"
  required_providers {
    basalt = { source = "basalt/basalt" }
  }
}

# Endpoint and token from BASALT_ENDPOINT and BASALT_TOKEN: the provider admin.
provider "basalt" {}

variable "acme_admin_password" {
  description = "Initial password of acme's administrator."
  type        = string
  sensitive   = true
  default     = "change me at first login" # for the dev server only
}

# The cluster `basalt-server dev` creates on libvirt's test driver.
data "basalt_cluster" "default" {
  name = "default"
}

# A public template (no tenant, no image: diskless VMs on the test driver).
resource "basalt_template" "small" {
  name       = "small"
  vcpus      = 1
  memory_mib = 512
}

module "acme" {
  source = "../"

  customer       = "acme"
  display_name   = "Acme Corp"
  admin_username = "alice"
  admin_email    = "alice@acme.example"
  admin_password = var.acme_admin_password
  cluster_id     = data.basalt_cluster.default.id
  vcpus          = 4
  memory_mib     = 4096
  max_vms        = 5
  template_id    = basalt_template.small.id
}

output "acme" {
  value = {
    tenant_id        = module.acme.tenant_id
    admin_user_id    = module.acme.admin_user_id
    operator_user_id = module.acme.operator_user_id
    quota_id         = module.acme.quota_id
    vm_id            = module.acme.vm_id
  }
}
