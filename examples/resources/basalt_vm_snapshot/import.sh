# Import a snapshot by VM_ID/SNAPSHOT_ID in the provider's `tenant` (or the
# token's own context), or by TENANT/VM_ID/SNAPSHOT_ID (tenant id or name).
terraform import basalt_vm_snapshot.before_upgrade acme/0192f3c1-7a6b-7c3e-9d2f-4b5a6c7d8e9f/0192f3c2-1b2c-7d3e-8f40-5a6b7c8d9e0f
