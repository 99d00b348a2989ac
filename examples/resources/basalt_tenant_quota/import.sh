# Import a quota by its id (quotas are managed at system scope: no tenant prefix).
terraform import basalt_tenant_quota.acme_gold 0192f3c1-7a6b-7c3e-9d2f-4b5a6c7d8e9f
