# Import a cluster by its id.
terraform import basalt_cluster.gold 0192f3c1-7a6b-7c3e-9d2f-4b5a6c7d8e9f
