# Inputs shared by every test file (a run's own `variables` block overrides them).
ssh_public_key    = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 me@laptop"
private_key_path  = "~/.ssh/cloudcode_rsa"
ssh_allowed_cidrs = ["203.0.113.7/32"]
admin_email       = "me@example.com"
admin_password    = "correct-horse-battery-staple"
llm_api_key       = "sk-test-0123456789"
