# Import a public template by its id; a tenant's template by TENANT/ID (tenant
# id or name), or by ID alone in the provider's `tenant`.
terraform import basalt_template.debian 0192f3c1-7a6b-7c3e-9d2f-4b5a6c7d8e9f
terraform import basalt_template.acme_small acme/0192f3c1-7a6b-7c3e-9d2f-4b5a6c7d8e9f
