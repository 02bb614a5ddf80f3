# ---------------------------------------------------------------------------------------------------------
# Naming
# ---------------------------------------------------------------------------------------------------------

variable "name" {
  description = "Name of the deployment: prefix of every cloud resource and the stack name snapshots are filed under (restore finds them by it)."
  type        = string
  default     = "cloudcode"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.name))
    error_message = "name must be 2 to 32 characters: lower-case letters, digits and '-', starting with a letter and not ending with '-'."
  }
}

variable "tags" {
  description = "Extra tags for every taggable resource (the module always adds `cloudcode = <name>`)."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------------------------------------

variable "zone_id" {
  description = "Availability zone, e.g. `ap-southeast-1b`. Empty: the first zone of the region that offers `instance_type` with cloud_essd disks. It cannot change once the box exists (the plan is refused)."
  type        = string
  default     = ""
  nullable    = false

  validation {
    condition     = var.zone_id == "" || can(regex("^[a-z]{2}-[a-z0-9-]+$", var.zone_id))
    error_message = "zone_id must be empty or a zone ID such as \"ap-southeast-1b\"."
  }
}

variable "instance_type" {
  description = "ECS instance type. The default, 2 vCPU / 4 GiB, runs OpenCode, Authelia and Caddy comfortably."
  type        = string
  default     = "ecs.e-c1m2.large"

  validation {
    condition     = can(regex("^ecs\\.[a-z0-9-]+\\.[a-z0-9]+$", var.instance_type))
    error_message = "instance_type must be an ECS instance type such as \"ecs.e-c1m2.large\"."
  }
}

variable "system_disk_size" {
  description = "System disk (cloud_essd) size in GiB. A restore uses at least the snapshot's size; the disk grows when this is raised and never shrinks."
  type        = number
  default     = 60
  nullable    = false

  validation {
    condition     = var.system_disk_size >= 20 && var.system_disk_size <= 2048 && floor(var.system_disk_size) == var.system_disk_size
    error_message = "system_disk_size must be a whole number of GiB between 20 and 2048."
  }
}

variable "key_pair_name" {
  description = "Name of the key pair holding `ssh_public_key`, for a pair this module adopts with an `import` block (`cloudcode import-legacy` sets it to the Go tool's). Empty: `<name>-key-<hash of the key>`, so a new `ssh_public_key` replaces the pair and binds it with one restart. While a name is set the key cannot change (the provider cannot update a pair's key): clear the name to change it."
  type        = string
  default     = ""
  nullable    = false

  validation {
    condition     = var.key_pair_name == "" || can(regex("^[A-Za-z][A-Za-z0-9._:-]{1,127}$", var.key_pair_name))
    error_message = "key_pair_name must be empty or 2 to 128 characters: letters, digits, '.', '_', ':' and '-', starting with a letter."
  }
}

variable "running" {
  description = "`false` suspends the machine: the instance stops in StopCharging mode (CPU and memory are not billed, the disk and EIP stay). `true` starts it (also after an idle suspend). Null (the default): running, except that a box that suspended itself for idleness (`idle_suspend_after`) stays stopped until an apply with `true`."
  type        = bool
  default     = null
}

variable "idle_suspend_after" {
  description = "Idle auto-suspend, off when null: once nobody has used the box for this long (`2h`, `90m`, `1h30m`; at least `1m`) it stops itself in StopCharging mode. The module gives the instance a RAM role whose policy allows stopping and tagging that one instance only; the next plan shows no change while it is suspended; `running = true` (or `cloudcode resume`) starts it again."
  type        = string
  default     = null

  validation {
    condition     = var.idle_suspend_after == null || can(regex("^([0-9]+(h|m|s))+$", var.idle_suspend_after))
    error_message = "idle_suspend_after must be a duration such as \"2h\", \"90m\" or \"1h30m\"."
  }
}

variable "idle_suspend_endpoint" {
  description = "ECS endpoint the box's idle agent calls (host name or URL), e.g. the VPC endpoint `ecs-vpc.<region>.aliyuncs.com`. Null: `ecs.<region>.aliyuncs.com`."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------------------------
# SSH
# ---------------------------------------------------------------------------------------------------------

variable "ssh_public_key" {
  description = "OpenSSH public key installed for root (`ssh-rsa AAAA...`). Alibaba Cloud key pairs accept RSA keys only, not ed25519."
  type        = string

  validation {
    condition     = can(regex("^ssh-rsa AAAA[0-9A-Za-z+/]+=*( .*)?$", trimspace(var.ssh_public_key)))
    error_message = "ssh_public_key must be an OpenSSH RSA public key (\"ssh-rsa AAAA...\"); Alibaba Cloud key pairs do not accept ed25519 or ECDSA keys."
  }
}

variable "private_key_path" {
  description = "Path of the matching private key on the machine running Terraform; the provider deploys over SSH with it."
  type        = string

  validation {
    condition     = trimspace(var.private_key_path) != "" && !strcontains(var.private_key_path, "\n")
    error_message = "private_key_path must be a non-empty file path on one line."
  }
}

variable "ssh_allowed_cidrs" {
  description = "IPv4 CIDR blocks allowed to reach SSH (port 22), e.g. `[\"203.0.113.7/32\"]` for your own address. Terraform itself deploys over SSH, so include the address it runs from."
  type        = list(string)

  validation {
    condition     = length(var.ssh_allowed_cidrs) > 0 && alltrue([for c in var.ssh_allowed_cidrs : can(cidrnetmask(c))])
    error_message = "ssh_allowed_cidrs must hold at least one IPv4 CIDR block such as \"203.0.113.7/32\"."
  }
}

variable "enable_https_alt_port" {
  description = "Also serve HTTPS on port 8443 (and open it in the security group) for networks that block 443."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------------------
# Public address and domain
# ---------------------------------------------------------------------------------------------------------

variable "eip_allocation_id" {
  description = "Reuse this existing EIP (`eip-...`) instead of allocating one; set `eip_address` to its IP. Keeping one EIP keeps the sslip.io fallback domain, and with it the passkeys registered for it, across destroy and restore."
  type        = string
  default     = ""

  validation {
    condition     = var.eip_allocation_id == "" || can(regex("^eip-[a-z0-9]+$", var.eip_allocation_id))
    error_message = "eip_allocation_id must be empty or an EIP allocation ID such as \"eip-t4n1234567890abcdef\"."
  }
}

variable "eip_address" {
  description = "The IPv4 address of `eip_allocation_id` (required with it, empty without it)."
  type        = string
  default     = ""

  validation {
    condition     = (var.eip_address == "") == (var.eip_allocation_id == "") && (var.eip_address == "" || can(cidrnetmask("${var.eip_address}/32")))
    error_message = "eip_address must be the IPv4 address of eip_allocation_id: set both or neither."
  }
}

variable "eip_bandwidth" {
  description = "Peak bandwidth of a new EIP in Mbit/s. It is billed by traffic (PayByTraffic), so the peak itself costs nothing."
  type        = number
  default     = 100

  validation {
    condition     = var.eip_bandwidth >= 1 && var.eip_bandwidth <= 200 && floor(var.eip_bandwidth) == var.eip_bandwidth
    error_message = "eip_bandwidth must be a whole number of Mbit/s between 1 and 200."
  }
}

variable "domain" {
  description = "Domain of the site, e.g. `oc.example.com`; `auth.<domain>` serves the login page. Empty: `<a-b-c-d>.sslip.io` from the EIP (passkeys are bound to the domain, so a new EIP means registering them again)."
  type        = string
  default     = ""

  validation {
    # The provider's own rule (UTS 46): upper case and internationalised names pass and are served in ASCII.
    condition     = var.domain == "" || can(provider::cloudcode::ascii_domain(var.domain))
    error_message = "domain must be empty or a DNS name such as \"oc.example.com\" or \"代码.example.com\" (not an IP address, no trailing dot)."
  }
}

variable "manage_dns" {
  description = "With a `domain`, create its A records (the name and `auth.` the name) in Alibaba Cloud DNS. `false` when the domain is hosted elsewhere: create the records of the `manual_dns_records` output by hand."
  type        = bool
  default     = true
}

variable "dns_zone" {
  description = "The Alibaba Cloud DNS domain that holds `domain`, e.g. `example.com` for `oc.example.com`. Empty: found among the account's DNS domains (longest matching suffix)."
  type        = string
  default     = ""

  validation {
    # Compared in their ASCII form, so a Unicode domain and a punycode zone (or the reverse) match.
    condition = var.dns_zone == "" || try(
      provider::cloudcode::ascii_domain(var.domain) == provider::cloudcode::ascii_domain(var.dns_zone)
      || endswith(provider::cloudcode::ascii_domain(var.domain), ".${provider::cloudcode::ascii_domain(var.dns_zone)}"),
      false
    )
    error_message = "dns_zone must be empty or a parent domain of (or equal to) domain."
  }
}

variable "dns_ttl" {
  description = "TTL of the A records in seconds (the free Alibaba Cloud DNS edition allows 600 and up)."
  type        = number
  default     = 600

  validation {
    condition     = var.dns_ttl >= 600 && var.dns_ttl <= 86400
    error_message = "dns_ttl must be between 600 (the minimum of the free DNS edition) and 86400 seconds."
  }
}

# ---------------------------------------------------------------------------------------------------------
# Login
# ---------------------------------------------------------------------------------------------------------

variable "admin_username" {
  description = "Login name of the single Authelia user."
  type        = string
  default     = "admin"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", var.admin_username))
    error_message = "admin_username must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit."
  }
}

variable "admin_email" {
  description = "E-mail of that user (Authelia identity checks) and the ACME account for certificates."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+\\.)+[A-Za-z]{2,}$", var.admin_email))
    error_message = "admin_email must be an e-mail address such as \"me@example.com\"."
  }
}

variable "admin_password" {
  description = "Password of the user, at least 12 characters. Ephemeral: it reaches the host through a write-only argument and is never stored in a plan or state. Needed on the first apply and with every new `admin_password_version`."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true

  validation {
    condition     = var.admin_password == null || try(length(var.admin_password) >= 12, false)
    error_message = "admin_password must be at least 12 characters long."
  }
}

variable "admin_password_version" {
  description = "Bump (1, 2, ...) together with a new `admin_password` to change the password on the host."
  type        = number
  default     = 1

  validation {
    condition     = var.admin_password_version >= 1 && floor(var.admin_password_version) == var.admin_password_version
    error_message = "admin_password_version must be a whole number, 1 or more."
  }
}

# ---------------------------------------------------------------------------------------------------------
# The agent
# ---------------------------------------------------------------------------------------------------------

variable "llm_provider" {
  description = "LLM provider for OpenCode: `openai`, `anthropic`, `gemini` or `openai_compatible`."
  type        = string
  default     = "openai"

  validation {
    condition     = contains(["openai", "anthropic", "gemini", "openai_compatible"], var.llm_provider)
    error_message = "llm_provider must be one of openai, anthropic, gemini, openai_compatible."
  }
}

variable "llm_base_url" {
  description = "API base URL (https) for `openai_compatible` providers or a proxy."
  type        = string
  default     = null

  validation {
    condition     = var.llm_base_url == null || startswith(coalesce(var.llm_base_url, "-"), "https://")
    error_message = "llm_base_url must be an https:// URL."
  }
}

variable "llm_model" {
  description = "Default model, e.g. `gpt-4.1` or `claude-sonnet-4-5`. Null: OpenCode's default."
  type        = string
  default     = null
}

variable "llm_api_key" {
  description = "API key of the LLM provider. Ephemeral: sent through a write-only argument, never stored. Needed on the first apply and with every new `llm_api_key_version`."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true

  validation {
    condition     = var.llm_api_key == null || try(length(trimspace(var.llm_api_key)) > 0 && trimspace(var.llm_api_key) == var.llm_api_key, false)
    error_message = "llm_api_key must not be empty or contain leading or trailing whitespace."
  }
}

variable "llm_api_key_version" {
  description = "Bump together with a new `llm_api_key` to change the key on the host."
  type        = number
  default     = 1

  validation {
    condition     = var.llm_api_key_version >= 1 && floor(var.llm_api_key_version) == var.llm_api_key_version
    error_message = "llm_api_key_version must be a whole number, 1 or more."
  }
}

variable "opencode_version" {
  description = "OpenCode version in the devbox. Null: the provider's pinned default."
  type        = string
  default     = null
}

variable "terminal_enabled" {
  description = "Serve the ttyd web terminal at `/terminal/` (behind the login)."
  type        = bool
  default     = true
}

variable "timezone" {
  description = "IANA time zone of the containers."
  type        = string
  default     = "UTC"
}

# ---------------------------------------------------------------------------------------------------------
# Snapshots: backup on destroy, restore on create
# ---------------------------------------------------------------------------------------------------------

variable "snapshot_on_destroy" {
  description = "On destroy, snapshot the system disk before the instance goes, so the next deploy can restore everything (workspace, sessions, passkeys, installed tools). About $0.40/month while kept."
  type        = bool
  default     = true
}

variable "snapshot_stop_before" {
  description = "Stop the instance before the destroy-time snapshot, for a consistent disk image."
  type        = bool
  default     = true
}

variable "snapshot_keep" {
  description = "How many snapshots of this stack to keep; older ones are deleted after a new one succeeds."
  type        = number
  default     = 1

  validation {
    condition     = var.snapshot_keep >= 1 && var.snapshot_keep <= 10 && floor(var.snapshot_keep) == var.snapshot_keep
    error_message = "snapshot_keep must be a whole number between 1 and 10."
  }
}

variable "restore" {
  description = "Create the instance from the latest snapshot of this stack (`name`) when one exists and is compatible with this provider version; otherwise install fresh."
  type        = bool
  default     = true
}

variable "restore_allow_incompatible" {
  description = "Restore even from a snapshot taken by an incompatible (major) version. Data is kept, but the stack is re-rendered for the new version."
  type        = bool
  default     = false
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

variable "preflight" {
  description = "Before the box exists, check with cloudcode_preflight that the credentials work, instance_type is in stock (in zone_id, or any zone), the vCPU quota has room, and show the balance and monthly price; a failed check stops the plan with one sentence naming what to change. The key needs read access to STS, ECS and BSS."
  type        = bool
  default     = true
}

variable "spot" {
  description = "Run the box as a spot instance (SpotAsPriceGo): typically a fifth of the pay-as-you-go price, but Alibaba Cloud may reclaim it with five minutes' notice when it needs the capacity (the disk and its data stay). Changing it replaces the instance. Default false."
  type        = bool
  default     = false
}

# --- your own apps and static sites (none unless set) -------------------------------------------------------

variable "apps" {
  description = "Your own apps by name (1 to 31 lower-case letters, digits and '-', starting with a letter; not `auth`), each a container behind the stack's HTTPS and login: exactly one of `image` (an image reference) and `build` (a local directory with a Dockerfile, uploaded and built on the host); `port` it listens on; `host` (default `<name>.<domain>`; a DNS label → `<label>.<domain>`, a name under the domain, or `/prefix` for a path of the main site); `auth` (`two_factor` default, `one_factor`, `public`); `env`; `secret_env_wo_version` (set or bump to apply the app's entry of `app_secret_env_wo`); `volumes` (name → container path, kept on destroy); `health` (an HTTP path); `command`; `memory` (e.g. `256m`). With a `domain` and `manage_dns`, each app not on a path gets an A record on its name."
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
  description = "Static sites by name (the same names as `apps`), served by Caddy's file server: `dir` (a local directory, uploaded to the host), `host` and `auth` as for `apps` (an A record too)."
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
