variable "customer" {
  description = "The customer's tenant name: lower-case letters, digits and '-', starting with a letter."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.customer))
    error_message = "customer must be lower-case letters, digits and '-', starting with a letter (at most 63 characters)."
  }
}

variable "display_name" {
  description = "The customer's name as people read it. Defaults to `customer`."
  type        = string
  default     = null
}

variable "admin_username" {
  description = "Login name of the customer's administrator (bound to the built-in `tenant-admin` role)."
  type        = string
}

variable "admin_email" {
  description = "Contact address of the customer's administrator."
  type        = string
  default     = null
}

variable "admin_password" {
  description = "Initial password of the customer's administrator (12-1024 characters)."
  type        = string
  sensitive   = true
}

variable "operator_username" {
  description = "Login name of the customer's operator, who runs VMs on `cluster_id` only."
  type        = string
  default     = "operator"
}

variable "operator_email" {
  description = "Contact address of the operator."
  type        = string
  default     = null
}

variable "operator_password" {
  description = "Initial password of the operator (12-1024 characters); null: the operator signs in with an API token made for it, or the admin sets a password later."
  type        = string
  default     = null
  sensitive   = true
}

variable "operator_permissions" {
  description = "What the custom `operator` role may do. Every permission must be grantable at cluster scope (see the `basalt_permissions` data source with scope = \"cluster\"), because the role is bound on one cluster."
  type        = set(string)
  default = [
    "cluster:list", "cluster:read",
    "template:list", "template:read",
    "vm:list", "vm:read", "vm:create", "vm:power", "vm:resize", "vm:console", "vm:delete",
    "snapshot:list", "snapshot:read", "snapshot:create", "snapshot:revert", "snapshot:delete",
    "operation:list", "operation:read",
  ]
}

variable "cluster_id" {
  description = "The cluster the customer gets capacity on (and the operator is bound to)."
  type        = string
}

variable "vcpus" {
  description = "vCPUs the customer's VMs on the cluster may use together."
  type        = number
  default     = 8
}

variable "memory_mib" {
  description = "Memory in MiB the customer's VMs on the cluster may use together."
  type        = number
  default     = 16384
}

variable "max_vms" {
  description = "How many VMs the customer may have on the cluster."
  type        = number
  default     = 10
}

variable "template_id" {
  description = "A template (public, or the customer's own) for a starter VM; null (the default): no starter VM."
  type        = string
  default     = null
}

variable "starter_vm_name" {
  description = "Name of the starter VM (when `template_id` is set)."
  type        = string
  default     = "starter"
}
