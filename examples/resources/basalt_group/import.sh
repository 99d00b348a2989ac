# Import a group by TENANT/ID (tenant id or name), or by ID alone in the
# provider's `tenant` (or the token's own context).
terraform import basalt_group.readers acme/0192f3c1-7a6b-7c3e-9d2f-4b5a6c7d8e9f
