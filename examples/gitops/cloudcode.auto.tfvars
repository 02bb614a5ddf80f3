# Non-secret settings, reviewed in pull requests. Secrets live in the CI's secret store.
ssh_public_key    = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7replace-with-your-key ci@cloudcode"
ssh_allowed_cidrs = ["203.0.113.7/32"]
admin_email       = "me@example.com"
