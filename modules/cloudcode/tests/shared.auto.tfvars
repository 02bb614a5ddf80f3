# Inputs shared by every test file (a run's own `variables` block overrides them).
ssh_public_key    = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 me@laptop"
private_key_path  = "~/.ssh/cloudcode_rsa"
ssh_allowed_cidrs = ["203.0.113.7/32"]
admin_email       = "me@example.com"
admin_password    = "correct-horse-battery-staple"
llm_api_key       = "sk-test-0123456789"
# terraform test (1.11) fails an apply run when an ephemeral variable is unset (or null) at plan time and the
# apply phase sees it ("must remain unset"): every ephemeral secret gets a value. The chat bridge's are never
# used (it stays off without their versions), nor is the outbound proxy (off without proxy_version),
# nor the apps' secret env (applied only for an app with a secret_env_wo_version).
im_telegram_token         = "unused"
im_dingtalk_client_secret = "unused"
im_proxy                  = "unused"
proxy                     = "unused"
app_secret_env            = {}
# The preflight calls the Alibaba Cloud APIs with the real cloudcode provider; these plan-only tests have no API
# (preflight.tftest.hcl overrides its answer instead).
preflight = false
