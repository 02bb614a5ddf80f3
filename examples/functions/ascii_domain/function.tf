output "domain" {
  # "xn--fsqu00a.xn--fiqs8s"
  value = provider::cloudcode::ascii_domain("例子.中国")
}
