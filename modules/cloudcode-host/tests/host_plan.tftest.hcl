# A stack on a machine you already have: what the plan of a new stack shows, with the real cloudcode provider
# (a plan connects to nothing: the URLs come from the domain, or the sslip.io name of the host), and the inputs
# the module refuses before the provider sees them. Runs unchanged under terraform test and tofu test.

variables {
  host             = "203.0.113.7"
  private_key_path = "/nonexistent/id_ed25519"
  admin_email      = "me@example.com"
  admin_password   = "a-long-test-password-1"
}

run "plan_of_a_host_stack_uses_the_hosts_sslip_name" {
  command = plan

  assert {
    condition     = cloudcode_stack.this.host == "203.0.113.7" && cloudcode_stack.this.port == 22 && cloudcode_stack.this.user == "root"
    error_message = "the stack connects to the host as root on port 22 by default"
  }
  assert {
    condition     = output.domain == "203-0-113-7.sslip.io"
    error_message = "no domain: the host's sslip.io name"
  }
  assert {
    condition     = output.url == "https://203-0-113-7.sslip.io/" && output.auth_url == "https://auth.203-0-113-7.sslip.io/"
    error_message = "the site and the login portal"
  }
  assert {
    condition     = output.terminal_url == "https://203-0-113-7.sslip.io/terminal/"
    error_message = "the web terminal is on by default"
  }
  assert {
    condition     = cloudcode_stack.this.admin_username == "admin" && cloudcode_stack.this.admin_password_wo_version == 1
    error_message = "the default user and the first password version"
  }
}

run "custom_domain_port_and_no_terminal" {
  command = plan

  variables {
    domain           = "code.example.com"
    ssh_port         = 2222
    ssh_user         = "deploy"
    terminal_enabled = false
    https_alt_port   = 8443
  }

  assert {
    condition     = output.url == "https://code.example.com/" && output.auth_url == "https://auth.code.example.com/"
    error_message = "the site on its own domain"
  }
  assert {
    condition     = output.terminal_url == null && cloudcode_stack.this.terminal_enabled == false
    error_message = "no terminal when it is turned off"
  }
  assert {
    condition     = cloudcode_stack.this.port == 2222 && cloudcode_stack.this.user == "deploy" && cloudcode_stack.this.https_alt_port == 8443
    error_message = "the SSH port, user and the alternative HTTPS port pass through"
  }
}

run "host_that_is_not_an_address_or_name_is_refused" {
  command = plan
  variables {
    host = "not a host!"
  }
  expect_failures = [var.host]
}

run "ssh_port_out_of_range_is_refused" {
  command = plan
  variables {
    ssh_port = 70000
  }
  expect_failures = [var.ssh_port]
}

run "upper_case_domain_is_served_in_lower_case" {
  command = plan
  variables {
    domain = "Code.Example.com"
  }

  assert {
    condition     = output.url == "https://code.example.com/" && output.auth_url == "https://auth.code.example.com/"
    error_message = "the site and the login portal on the lower-case name"
  }
}

run "domain_with_a_space_is_refused" {
  command = plan
  variables {
    domain = "code example.com"
  }
  expect_failures = [var.domain]
}

run "nip_io_names_the_host_without_a_domain" {
  command = plan
  variables {
    fallback_domain_service = "nip.io"
  }

  assert {
    condition     = output.domain == "203-0-113-7.nip.io" && output.url == "https://203-0-113-7.nip.io/"
    error_message = "no domain on nip.io: the host's nip.io name"
  }
}

run "unknown_fallback_domain_service_is_refused" {
  command = plan
  variables {
    fallback_domain_service = "xip.io"
  }
  expect_failures = [var.fallback_domain_service]
}

run "no_chat_bridge_by_default" {
  command = plan

  assert {
    condition     = length(cloudcode_stack.this.im) == 0 && !contains(keys(cloudcode_stack.this.services), "im")
    error_message = "the chat bridge is off unless Telegram or DingTalk is configured"
  }
}

run "chat_bridge_with_telegram_and_a_permission_policy" {
  command = plan

  variables {
    im_telegram_token         = "123456:test-token"
    im_telegram_token_version = 1
    opencode_permission       = { bash = "ask", edit = "allow" }
  }

  assert {
    condition     = length(cloudcode_stack.this.im) == 1 && cloudcode_stack.this.im[0].telegram_token_wo_version == 1 && cloudcode_stack.this.im[0].telegram_token_wo == null
    error_message = "the im block is planned with its version and without the token"
  }
  assert {
    condition     = cloudcode_stack.this.services["im"] == "running" && contains(keys(cloudcode_stack.this.files), "im/config.json")
    error_message = "the im service and its configuration are planned"
  }
  assert {
    condition     = cloudcode_stack.this.opencode_permission["bash"] == "ask"
    error_message = "the permission policy reaches the stack"
  }
}

run "apps_and_static_sites_pass_through_with_their_urls" {
  command = plan

  variables {
    domain = "code.example.com"
    apps = {
      api   = { image = "ghcr.io/me/api:1.2", port = 8000, auth = "public", env = { LOG_LEVEL = "info" } }
      admin = { image = "ghcr.io/me/admin:3", port = 80, host = "/admin" }
    }
    static_sites = {
      docs = { dir = "tests", host = "help" }
    }
  }

  assert {
    condition     = cloudcode_stack.this.apps["api"].port == 8000 && cloudcode_stack.this.apps["api"].auth == "public" && cloudcode_stack.this.apps["admin"].host == "/admin"
    error_message = "the apps reach the stack as given"
  }
  assert {
    condition     = cloudcode_stack.this.static_sites["docs"].dir == "tests"
    error_message = "the static site reaches the stack"
  }
  assert {
    condition = output.app_urls == {
      api   = "https://api.code.example.com/"
      admin = "https://code.example.com/admin/"
      docs  = "https://help.code.example.com/"
    }
    error_message = "an app on its own name, one on a path of the main site, a site on a label"
  }
}

run "no_apps_leaves_the_stack_without_them" {
  command = plan

  assert {
    condition     = cloudcode_stack.this.apps == null && cloudcode_stack.this.static_sites == null && length(output.app_urls) == 0
    error_message = "no apps: nothing is passed and there are no app URLs"
  }
}

run "app_with_an_unknown_auth_is_refused" {
  command = plan
  variables {
    apps = {
      api = { image = "ghcr.io/me/api:1.2", port = 8000, auth = "none" }
    }
  }
  expect_failures = [var.apps]
}

run "app_with_both_image_and_build_is_refused" {
  command = plan
  variables {
    apps = {
      api = { image = "ghcr.io/me/api:1.2", build = "tests", port = 8000 }
    }
  }
  expect_failures = [var.apps]
}
