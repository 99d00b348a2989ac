# A second region beside a standalone server's `local` (provider staff only).
resource "basalt_region" "eu_west" {
  name     = "eu-west"
  endpoint = "https://eu-west.basalt.example.com"
}
