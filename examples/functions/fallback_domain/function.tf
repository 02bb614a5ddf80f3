output "domain" {
  # "47-1-2-3.sslip.io"
  value = provider::cloudcode::fallback_domain("47.1.2.3")
}

output "domain_on_nip_io" {
  # "47-1-2-3.nip.io"
  value = provider::cloudcode::fallback_domain("47.1.2.3", "nip.io")
}
