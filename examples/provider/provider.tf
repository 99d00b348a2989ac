terraform {
  required_providers {
    basalt = { source = "basalt/basalt" }
  }
}

variable "basalt_token" {
  type      = string
  sensitive = true
}

provider "basalt" {
  endpoint = "http://127.0.0.1:8080" # or BASALT_ENDPOINT
  token    = var.basalt_token        # or BASALT_TOKEN
  # Optional default tenant (id or name) for resources without `tenant_id`;
  # a system-scope token enters it by token exchange. Or BASALT_TENANT.
  tenant = "acme"
}
