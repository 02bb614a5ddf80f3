variable "host" {
  description = "IP address or DNS name of the existing machine (any cloud or on-premises), reachable over SSH from where Terraform runs."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$", var.host))
    error_message = "host must be an IP address or a DNS name."
  }
}

variable "ssh_port" {
  description = "SSH port of the machine."
  type        = number
  default     = 22

  validation {
    condition     = var.ssh_port >= 1 && var.ssh_port <= 65535 && floor(var.ssh_port) == var.ssh_port
    error_message = "ssh_port must be a port number between 1 and 65535."
  }
}

variable "ssh_user" {
  description = "SSH user: root, or a user who may run sudo without a password."
  type        = string
  default     = "root"
}

variable "private_key_path" {
  description = "Path of the SSH private key on the machine running Terraform."
  type        = string
}

variable "host_key" {
  description = "The machine's SSH host key (`ssh-ed25519 AAAA...`) or `SHA256:` fingerprint to pin. Null: the key seen on first connection is pinned."
  type        = string
  default     = null
}

variable "domain" {
  description = "Domain of the site; `auth.<domain>` must resolve to the machine as well. Empty: `<a-b-c-d>.sslip.io` from the host's IPv4 address."
  type        = string
  default     = ""

  validation {
    # The provider's own rule (UTS 46): upper case and internationalised names pass and are served in ASCII.
    condition     = var.domain == "" || can(provider::cloudcode::ascii_domain(var.domain))
    error_message = "domain must be empty or a DNS name such as \"oc.example.com\" or \"代码.example.com\" (not an IP address, no trailing dot)."
  }
}

variable "admin_username" {
  description = "Login name of the single Authelia user."
  type        = string
  default     = "admin"
}

variable "admin_email" {
  description = "E-mail of that user and the ACME account."
  type        = string
}

variable "admin_password" {
  description = "Password of the user (at least 12 characters). Ephemeral: sent through a write-only argument, never stored."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "admin_password_version" {
  description = "Bump together with a new `admin_password`."
  type        = number
  default     = 1
}

variable "llm_provider" {
  description = "`openai`, `anthropic`, `gemini` or `openai_compatible`."
  type        = string
  default     = "openai"
}

variable "llm_base_url" {
  description = "API base URL (https) for `openai_compatible` providers."
  type        = string
  default     = null
}

variable "llm_model" {
  description = "Default model."
  type        = string
  default     = null
}

variable "llm_api_key" {
  description = "API key of the LLM provider. Ephemeral: sent through a write-only argument, never stored."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "llm_api_key_version" {
  description = "Bump together with a new `llm_api_key`."
  type        = number
  default     = 1
}

variable "terminal_enabled" {
  description = "Serve the web terminal at `/terminal/`."
  type        = bool
  default     = true
}

variable "https_alt_port" {
  description = "Also serve HTTPS on this port (e.g. 8443); open it in the machine's firewall yourself."
  type        = number
  default     = null
}

variable "remote_teardown" {
  description = "On destroy, stop the containers and remove the rendered files (never the volumes). The machine itself is not managed here."
  type        = bool
  default     = true
}

# --- the chat bridge and OpenCode's permissions (off / OpenCode's defaults unless set) ---------------------

variable "opencode_permission" {
  description = "OpenCode's permission policy: tool name → `ask`, `allow` or `deny`, e.g. `{ bash = \"ask\", edit = \"allow\" }`. Null: OpenCode's defaults."
  type        = map(string)
  default     = null
}

variable "im_telegram_token" {
  description = "Telegram bot token for the chat bridge. Ephemeral: sent through a write-only argument, never stored. Needed with a new `im_telegram_token_version`."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "im_telegram_token_version" {
  description = "Set (e.g. 1) to run the chat bridge with Telegram; bump together with a new `im_telegram_token`."
  type        = number
  default     = null
}

variable "im_telegram_api_base" {
  description = "Telegram Bot API base URL. Null: `https://api.telegram.org`."
  type        = string
  default     = null
}

variable "im_dingtalk_client_id" {
  description = "DingTalk app Client ID; setting it runs the chat bridge with DingTalk."
  type        = string
  default     = null
}

variable "im_dingtalk_client_secret" {
  description = "DingTalk app Client Secret. Ephemeral: sent through a write-only argument, never stored."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "im_dingtalk_client_secret_version" {
  description = "Bump together with a new `im_dingtalk_client_secret`; required with `im_dingtalk_client_id`."
  type        = number
  default     = null
}

variable "im_dingtalk_robot_code" {
  description = "DingTalk robot code. Null: the Client ID."
  type        = string
  default     = null
}

variable "im_proxy" {
  description = "Proxy URL (http://, https:// or socks5://, may carry credentials) for the bridge's platform traffic. Ephemeral: never stored."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "im_proxy_version" {
  description = "Set to use `im_proxy`; bump together with a new one."
  type        = number
  default     = null
}

variable "fallback_domain_service" {
  description = "The wildcard-DNS service naming the site when `domain` is empty: `sslip.io` or `nip.io` (`<a-b-c-d>.nip.io`); switch when one is unreachable where your users are."
  type        = string
  default     = "sslip.io"

  validation {
    condition     = contains(["sslip.io", "nip.io"], var.fallback_domain_service)
    error_message = "fallback_domain_service must be \"sslip.io\" or \"nip.io\"."
  }
}

variable "proxy" {
  description = "Outbound proxy for the devbox (OpenCode's LLM traffic, git, npm, pip) and the chat bridge without its own `im_proxy`: an http://, https:// or socks5:// URL, which may carry credentials. Ephemeral: never stored."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "proxy_version" {
  description = "Set to use `proxy`; bump together with a new one. Null: no proxy."
  type        = number
  default     = null
}

variable "no_proxy" {
  description = "Host names (`.corp.example.com` for subdomains too), IP addresses or CIDR blocks the devbox reaches directly despite `proxy`; the stack's own names always are."
  type        = list(string)
  default     = []
}

variable "mirrors" {
  description = "Registry and package mirrors where Docker Hub, ghcr.io, npm or PyPI are slow or blocked: `{ preset = \"cn\" }` (mainland China), or any of `image_registry`, `registry_mirrors`, `insecure_registries`, `npm`, `pypi`, `apt` (each overrides the preset's; `apt`: the archive mirror the host's apt uses when the deploy installs Docker). Null: the upstream registries."
  type = object({
    preset              = optional(string)
    image_registry      = optional(string)
    registry_mirrors    = optional(list(string))
    insecure_registries = optional(list(string))
    npm                 = optional(string)
    pypi                = optional(string)
    apt                 = optional(string)
  })
  default = null
}

# --- your own apps and static sites (none unless set) -------------------------------------------------------

variable "apps" {
  description = "Your own apps by name (1 to 31 lower-case letters, digits and '-', starting with a letter; not `auth`), each a container behind the stack's HTTPS and login: exactly one of `image` (an image reference) and `build` (a local directory with a Dockerfile, uploaded and built on the host); `port` it listens on; `host` (default `<name>.<domain>`; a DNS label → `<label>.<domain>`, a name under the domain, or `/prefix` for a path of the main site); `auth` (`two_factor` default, `one_factor`, `public`); `env`; `secret_env_wo_version` (set or bump to apply the app's entry of `app_secret_env_wo`); `volumes` (name → container path, kept on destroy); `health` (an HTTP path); `command`; `memory` (e.g. `256m`)."
  type = map(object({
    image                 = optional(string)
    build                 = optional(string)
    port                  = number
    host                  = optional(string)
    auth                  = optional(string)
    env                   = optional(map(string))
    secret_env_wo_version = optional(number)
    volumes               = optional(map(string))
    health                = optional(string)
    command               = optional(list(string))
    memory                = optional(string)
  }))
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for n in keys(var.apps) : can(regex("^[a-z][a-z0-9-]{0,30}$", n)) && !endswith(n, "-") && n != "auth"])
    error_message = "apps: each name must be 1 to 31 lower-case letters, digits and '-', start with a letter, not end with '-', and not be \"auth\"."
  }
  validation {
    condition     = alltrue([for a in values(var.apps) : (a.image == null) != (a.build == null)])
    error_message = "apps: each app sets exactly one of image (an image reference) and build (a local directory with a Dockerfile)."
  }
  validation {
    condition     = alltrue([for a in values(var.apps) : a.port >= 1 && a.port <= 65535 && floor(a.port) == a.port])
    error_message = "apps: each app's port must be a TCP port between 1 and 65535."
  }
  validation {
    condition     = alltrue([for a in values(var.apps) : contains(["two_factor", "one_factor", "public"], a.auth == null ? "two_factor" : a.auth)])
    error_message = "apps: auth must be \"two_factor\", \"one_factor\" or \"public\"."
  }
}

variable "static_sites" {
  description = "Static sites by name (the same names as `apps`), served by Caddy's file server: `dir` (a local directory, uploaded to the host), `host` and `auth` as for `apps`."
  type = map(object({
    dir  = string
    host = optional(string)
    auth = optional(string)
  }))
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for n in keys(var.static_sites) : can(regex("^[a-z][a-z0-9-]{0,30}$", n)) && !endswith(n, "-") && n != "auth"])
    error_message = "static_sites: each name must be 1 to 31 lower-case letters, digits and '-', start with a letter, not end with '-', and not be \"auth\"."
  }
  validation {
    condition     = alltrue([for s in values(var.static_sites) : contains(["two_factor", "one_factor", "public"], s.auth == null ? "two_factor" : s.auth)])
    error_message = "static_sites: auth must be \"two_factor\", \"one_factor\" or \"public\"."
  }
}

variable "app_secret_env" {
  description = "Secret environment of the apps: app name → variables (e.g. `{ api = { DB_PASSWORD = \"…\" } }`). Ephemeral: sent through a write-only argument, never stored; an app's entry is applied when its `secret_env_wo_version` is set or bumped."
  type        = map(map(string))
  default     = null
  sensitive   = true
  ephemeral   = true
}
