output "domain" {
  # "47-1-2-3.sslip.io"
  value = provider::cloudcode::fallback_domain("47.1.2.3")
}
