# Import a user by TENANT/ID (tenant id or name), or by ID alone in the
# provider's `tenant` (or the token's own context). The password cannot be read
# back: the first plan after an import sets it again.
terraform import basalt_user.alice acme/0192f3c1-7a6b-7c3e-9d2f-4b5a6c7d8e9f
