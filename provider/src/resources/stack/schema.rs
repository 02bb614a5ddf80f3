//! The schema of `cloudcode_stack`: every attribute, described, with its plan-time validators.

use cloudcode_bundle::validate as rule;
use cloudcode_tfplugin::framework::{Attribute, Block, Schema};
use cloudcode_tfplugin::value::{Type, Value};

/// Service names `images` may override (`im` is used only with the `im` block).
pub const IMAGE_KEYS: [&str; 5] = ["caddy", "authelia", "devbox", "im", "agent"];

// ---------------------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------------------

fn duration(name: &str, what: &str) -> Attribute {
    Attribute::string(name)
        .optional()
        .description(&format!("Time limit for {what}, e.g. `\"20m\"`."))
        .validate_str(rule_duration)
}

pub fn rule_duration(v: &str) -> Result<(), String> {
    humantime::parse_duration(v)
        .map(|_| ())
        .map_err(|_| format!("{v:?} is not a duration such as \"30s\", \"10m\" or \"1h30m\""))
}

pub fn schema() -> Schema {
    let s = Attribute::string;
    let b = Attribute::bool;
    let n = Attribute::number;
    Schema::new(
        0,
        Block::new(
            "A cloudcode deployment on one host: Caddy (HTTPS), Authelia (password + passkey/TOTP) and the \
             OpenCode devbox with a web terminal, run by Docker Compose and deployed over SSH.",
        )
        // --- where and how to connect -------------------------------------------------------------------
        .attribute(s("host").required().validate_str(rule::host).description(
            "IP address or host name of the machine to deploy on. With an empty `domain`, its IPv4 address \
             also gives the fallback domain `<a-b-c-d>.sslip.io`.",
        ))
        .attribute(n("port").default(Value::int(22)).validate_i64(rule::port).description("SSH port. Default `22`."))
        .attribute(s("user").default(Value::string("root")).validate_str(rule::username).description(
            "SSH user; must be root or able to run `sudo` without a password. Default `root`.",
        ))
        .attribute(s("host_key").optional().computed().use_state_for_unknown().validate_str(rule::ssh_host_key).description(
            "The host's SSH public key (`ssh-ed25519 AAAA...`) or fingerprint (`SHA256:...`) to pin. When unset, \
             the key seen on first connection is recorded here and every later connection must present it; a \
             mismatch stops with both fingerprints.",
        ))
        .attribute(s("private_key_path").optional().validate_str(rule_path).description(
            "Path of the SSH private key on the machine running Terraform. A path is no secret, so it may live \
             in state. Alternatives: the provider's `ssh_private_key`, or `ssh_agent = true`.",
        ))
        .attribute(b("ssh_agent").default(Value::bool(false)).description(
            "Authenticate with the keys of the running SSH agent (`SSH_AUTH_SOCK`). Default `false`.",
        ))
        .attribute(Attribute::object(
            "jump_host",
            vec![
                s("host").required().validate_str(rule::host).description("Jump host address."),
                n("port").optional().validate_i64(rule::port).description("Jump host SSH port. Default `22`."),
                s("user").optional().validate_str(rule::username).description("Jump host user. Default: the stack's `user`."),
                s("host_key").optional().validate_str(rule::ssh_host_key).description(
                    "The jump host's public key or `SHA256:` fingerprint to pin.",
                ),
                s("private_key_path").optional().validate_str(rule_path).description(
                    "Key for the jump host. Default: the stack's credentials.",
                ),
            ],
        )
        .optional()
        .description("Reach `host` through this SSH bastion (like `ssh -J`)."))
        .attribute(Attribute::object(
            "timeouts",
            vec![
                duration("create", "the first deploy (Docker install, image pulls, health)"),
                duration("update", "a change"),
                duration("delete", "teardown"),
                duration("connect", "waiting for SSH while the machine boots"),
            ],
        )
        .optional()
        .description("Time limits. Defaults: create `30m`, update `20m`, delete `10m`, connect `5m`."))
        // --- the site ------------------------------------------------------------------------------------
        .attribute(s("domain").optional().computed().description(
            "Domain of the site; `auth.<domain>` serves the login page, so both names must resolve to `host`. \
             Upper case and internationalised names (`例子.中国`) are accepted and deployed in their ASCII form \
             (`xn--fsqu00a.xn--fiqs8s`), which `url` shows. Null or empty: `<a-b-c-d>.sslip.io` (or `fallback_domain_service`) from the host's \
             IPv4 address (passkeys are bound to the domain, so a new address means registering them again).",
        ))
        .attribute(s("fallback_domain_service").default(Value::string("sslip.io")).validate_str(rule::fallback_domain_service).description(
            "The wildcard-DNS service that names the site when `domain` is empty: `sslip.io` (default) or `nip.io` \
             (`<a-b-c-d>.nip.io`). Switch when one of them is unreachable or blocked where your users are.",
        ))
        .attribute(s("admin_username").required().description("The login name of the single Authelia user."))
        .attribute(s("admin_display_name").optional().description("Display name of that user. Default: `admin_username`."))
        .attribute(s("admin_email").required().description(
            "The user's e-mail (Authelia identity checks; also the ACME account unless `acme_email` is set).",
        ))
        .attribute(s("admin_password_wo").optional().sensitive().write_only().validate_str(rule::password).description(
            "The user's password, at least 12 characters. **Write-only** (Terraform >= 1.11): never stored in plan \
             or state. Needed on create and whenever `admin_password_wo_version` changes; otherwise leave it null \
             and the host keeps its password hash.",
        ))
        .attribute(n("admin_password_wo_version").default(Value::int(1)).description(
            "Bump to apply a new `admin_password_wo`. Default `1`.",
        ))
        // --- the agent -----------------------------------------------------------------------------------
        .attribute(s("llm_provider").default(Value::string("openai")).description(
            "LLM provider for OpenCode: `openai`, `anthropic`, `gemini` or `openai_compatible`. Default `openai`.",
        ))
        .attribute(s("llm_base_url").optional().description(
            "API base URL (https) for `openai_compatible` providers or a proxy.",
        ))
        .attribute(s("llm_model").optional().description("Default model, e.g. `gpt-4.1` or `claude-sonnet-4-5`."))
        .attribute(s("llm_api_key_wo").optional().sensitive().write_only().validate_str(rule::api_key).description(
            "API key of the LLM provider. **Write-only**: never stored; supply it with a new \
             `llm_api_key_wo_version`, otherwise the host keeps its key.",
        ))
        .attribute(n("llm_api_key_wo_version").optional().description(
            "Bump to apply a new `llm_api_key_wo`.",
        ))
        .attribute(s("opencode_version").default(Value::string(cloudcode_bundle::DEFAULT_OPENCODE_VERSION)).description(
            &format!(
                "OpenCode version in the devbox. Default `{}` (pinned; OpenCode 2.x changed its CLI).",
                cloudcode_bundle::DEFAULT_OPENCODE_VERSION
            ),
        ))
        .attribute(Attribute::map_of("opencode_permission", Type::String).optional().validate(rule_permission).description(
            "OpenCode's permission policy: tool name → `ask`, `allow` or `deny`, e.g. `{ bash = \"ask\", edit = \"allow\" }` \
             (rendered into the devbox's `opencode.json` as `permission`). Tool names are lowercase letters, `_` \
             and `*`. Default: OpenCode's own.",
        ))
        // --- outbound proxy ------------------------------------------------------------------------------
        .attribute(s("proxy_wo").optional().sensitive().write_only().validate_str(rule::proxy_url).description(
            "Outbound proxy for the devbox — OpenCode's LLM traffic, git, curl, npm and pip — and for the chat \
             bridge when its `im.proxy_wo` is unset: an `http://`, `https://` or `socks5://` URL, which may carry \
             credentials (e.g. `http://user:pass@proxy.example.com:3128`). OpenCode and npm use only an HTTP(S) \
             proxy; a `socks5://` one reaches curl and git. **Write-only**: never in plan or state; supply it with \
             a new `proxy_wo_version`.",
        ))
        .attribute(n("proxy_wo_version").optional().description(
            "Set to use `proxy_wo`; bump it to apply a new one. Unset: no proxy (the devbox is replaced without it).",
        ))
        .attribute(Attribute::list_of("no_proxy", Type::String).optional().validate(rule_no_proxy).description(
            "Host names (`.corp.example.com` for subdomains too), IP addresses or CIDR blocks the devbox reaches \
             directly despite `proxy_wo`. The stack's own names (`localhost`, its services, `domain`, \
             `auth.<domain>`) always are.",
        ))
        .attribute(Attribute::object(
            "mirrors",
            vec![
                s("preset").optional().validate_str(rule_mirrors_preset).description(
                    "`cn`: the release images from Alibaba Cloud Container Registry (Hangzhou), npm from npmmirror, \
                     PyPI and apt from Alibaba Cloud's mirrors. Every other field overrides the preset's.",
                ),
                s("image_registry").optional().validate_str(cloudcode_bundle::mirrors::image_registry).description(
                    "Registry and namespace the default images are pulled from instead of Docker Hub and ghcr.io, \
                     e.g. `registry.cn-hangzhou.aliyuncs.com/team`: `docker.io/library/caddy:2.10.2` becomes \
                     `<image_registry>/caddy:2.10.2`. Images set in `images` are pulled as given.",
                ),
                Attribute::list_of("registry_mirrors", Type::String).optional().validate(rule_each(rule::https_url)).description(
                    "Docker Hub pull-through mirrors for the host's Docker daemon (`registry-mirrors`), e.g. your \
                     account's `https://<id>.mirror.aliyuncs.com`.",
                ),
                Attribute::list_of("insecure_registries", Type::String).optional().validate(rule_each(cloudcode_bundle::mirrors::registry_host)).description(
                    "Registries (`host:port` or CIDR) the host's Docker daemon may reach over plain HTTP \
                     (`insecure-registries`), e.g. a mirror inside your VPC.",
                ),
                s("npm").optional().validate_str(rule::https_url).description(
                    "npm registry inside the devbox (`NPM_CONFIG_REGISTRY`).",
                ),
                s("pypi").optional().validate_str(rule::https_url).description(
                    "PyPI index inside the devbox (`PIP_INDEX_URL`, `UV_DEFAULT_INDEX`).",
                ),
                s("apt").optional().validate_str(cloudcode_bundle::mirrors::apt_mirror).description(
                    "Debian/Ubuntu archive mirror for the host's apt when the deploy installs Docker, e.g. \
                     `http://mirrors.cloud.aliyuncs.com` inside Alibaba Cloud: each of the host's sources is read \
                     from this base URL with its own path (`/ubuntu/`), for that install only (the host's apt \
                     configuration is not changed). The `cn` preset uses `https://mirrors.aliyun.com`.",
                ),
            ],
        )
        .optional()
        .description(
            "Registry and package mirrors for networks where Docker Hub, ghcr.io, npm or PyPI are slow or blocked \
             (mainland China: `mirrors = { preset = \"cn\" }`). The Docker daemon settings go into \
             `/etc/docker/daemon.json` when it is absent or was written by cloudcode (a hand-written one is refused \
             with advice) and are reloaded without restarting containers.",
        ))
        // --- images --------------------------------------------------------------------------------------
        .attribute(Attribute::map_of("images", Type::String).optional().validate(rule_image_keys).description(
            "Image per service, overriding the pinned defaults (private registries, mirrors): keys `caddy`, \
             `authelia`, `devbox`, `im` (the chat bridge, used with the `im` block; it must run as uid 10001 or root), \
             `agent` (the idle agent, used with `idle_suspend_after`).",
        ))
        .attribute(b("allow_authelia_downgrade").default(Value::bool(false)).description(
            "Allow a plan whose Authelia is older than the one deployed (`authelia_image`). Off by default: a \
             database migrated by a newer Authelia is refused by an older one, which then does not start. Turn it \
             on only after removing the `authelia_data` volume (passkeys and TOTP must then be registered again). \
             Default `false`.",
        ))
        .attribute(Attribute::list_of("image_archives", Type::String).optional().validate(rule_archives).description(
            "Local image tarballs (`docker save` output) to upload and `docker load` before starting, for hosts \
             that cannot pull.",
        ))
        .attribute(b("devbox_build").default(Value::bool(false)).description(
            "Build the devbox image on the host from the rendered Dockerfile instead of pulling the prebuilt \
             image (slow on small machines). Default `false`.",
        ))
        // --- behaviour -----------------------------------------------------------------------------------
        .attribute(b("terminal_enabled").default(Value::bool(true)).description(
            "Serve the ttyd web terminal at `/terminal/`. Default `true`.",
        ))
        .attribute(n("https_alt_port").optional().description(
            "Also serve HTTPS on this port (e.g. `8443`) for networks that block 443.",
        ))
        .attribute(s("tls_mode").default(Value::string("acme")).description(
            "`acme`: public certificates from Let's Encrypt / ZeroSSL. `internal`: Caddy's own CA, for private \
             networks and tests. Default `acme`.",
        ))
        .attribute(s("acme_email").optional().description("ACME account e-mail. Default: `admin_email`."))
        .attribute(s("timezone").default(Value::string("UTC")).description("IANA time zone of the containers, checked against the IANA database at plan (`Mars/Olympus` is refused). Default `UTC`."))
        .attribute(s("remote_dir").default(Value::string(cloudcode_bundle::settings::DEFAULT_REMOTE_DIR)).requires_replace().description(
            "Directory on the host for the rendered files and `secrets/`. Changing it deploys anew. Default \
             `/opt/cloudcode`.",
        ))
        .attribute(s("docker_install").default(Value::string("auto")).validate_str(rule::docker_install).description(
            "`auto`: install Docker and Compose v2 with the distribution's packages when missing. `skip`: never \
             install; fail if absent. Default `auto`.",
        ))
        // --- idle auto-suspend ------------------------------------------------------------------------------
        .attribute(s("idle_suspend_after").optional().validate_str(rule_idle_suspend_after).description(
            "Idle auto-suspend (off when null): once nobody has used the box for this long — `2h`, `90m`, `1h30m`, \
             at least `1m` — an agent on the host stops the instance in StopCharging mode through the ECS API. Use \
             is a request through Caddy that passed the login (not cloudcode's own checks, not the login portal, \
             not a request the login turned away), an OpenCode session at work, an SSH login and a chat bridge \
             message. The instance needs a RAM role allowing `ecs:StopInstance`, \
             `ecs:TagResources` and `ecs:UntagResources` on itself (the `cloudcode` module creates it); the agent \
             takes its credentials from the metadata service (never stored) and tags the instance `cloudcode:idle-suspended` \
             with the time before it stops it.",
        ))
        .attribute(s("idle_suspend_endpoint").optional().validate_str(rule::endpoint).description(
            "ECS API endpoint the idle agent calls (host name or `http(s)://` URL), e.g. the VPC endpoint \
             `ecs-vpc.cn-hangzhou.aliyuncs.com`. Default: `ecs.<region>.aliyuncs.com` of the instance's region.",
        ))
        .attribute(b("host_running").default(Value::bool(true)).description(
            "`false` while the machine is stopped (suspend): neither plan nor apply connects; changes wait for \
             the next apply with the host running. Default `true`. A read that gets no SSH answer at all records \
             it as `false` (with a warning), so a stopped machine — e.g. one that suspended itself for idleness — \
             plans no change when the configuration says so, and an apply with `true` connects again.",
        ))
        .attribute(b("remote_teardown").default(Value::bool(true)).description(
            "On destroy, run `docker compose down` and remove the rendered files (never `secrets/` or volumes). \
             Set `false` when the machine itself is destroyed. Default `true`.",
        ))
        .attribute(b("destroy_volumes").default(Value::bool(false)).description(
            "With `remote_teardown`, also delete the volumes (workspace, sessions, passkeys). Default `false`.",
        ))
        // --- your own apps and static sites ----------------------------------------------------------------
        .attribute(apps_attribute())
        .attribute(static_sites_attribute())
        .attribute(Attribute::map_of("app_secret_env_wo", Type::Map(Box::new(Type::String))).optional().sensitive().write_only().description(
            "Secret environment of the apps: app name → variables. **Write-only**: never stored; written to \
             `secrets/app-<name>.env` (0600) on the host when that app's `secret_env_wo_version` changes, otherwise \
             the host keeps what it has.",
        ))
        // --- the chat bridge ----------------------------------------------------------------------------
        .single_block("im", im_block())
        // --- results -------------------------------------------------------------------------------------
        .attribute(s("id").computed().use_state_for_unknown().description("`user@host:port/remote_dir`."))
        .attribute(s("url").computed().description("The site: OpenCode's web UI, behind the login."))
        .attribute(s("auth_url").computed().description("The Authelia login portal, `https://auth.<domain>`."))
        .attribute(s("terminal_url").computed().description("The web terminal, or null when `terminal_enabled` is false."))
        .attribute(Attribute::map_of("files", Type::String).computed().description(
            "Deployed files (path relative to `remote_dir` → sha256). A hand edit on the host shows up here as drift.",
        ))
        .attribute(Attribute::map_of("services", Type::String).computed().description(
            "State of each container (`caddy`, `authelia`, `devbox`, and `im` with the `im` block): `running` when healthy. A stopped or unhealthy \
             container shows up here as drift, and the next apply starts it.",
        ))
        .attribute(s("deployed_version").computed().description("Version of the provider that last deployed the host."))
        .attribute(s("authelia_image").computed().description(
            "The Authelia image deployed on the host (`images.authelia`, or the provider's pinned default). A later \
             plan with an older Authelia version is refused unless `allow_authelia_downgrade`.",
        )),
    )
}

fn host_and_auth() -> [Attribute; 2] {
    let s = Attribute::string;
    [
        s("host").optional().description(
            "Where it is served: `<name>.<domain>` by default; a DNS label (`api` → `api.<domain>`), a name under \
             the domain, or a path on the main site (`/api`, the prefix stripped before the request reaches it). \
             One login covers the domain and its subdomains.",
        ),
        s("auth").optional().validate_str(|v| {
            if cloudcode_bundle::apps::AUTH_MODES.contains(&v) {
                Ok(())
            } else {
                Err(format!("{v:?} is not one of \"two_factor\", \"one_factor\", \"public\""))
            }
        }).description(
            "`two_factor` (default: password and passkey/TOTP), `one_factor` (password; only on a name of its own, \
             not a path of the main site) or `public` (no login; still HTTPS with HSTS).",
        ),
    ]
}

/// `apps`: the user's own containers behind the same HTTPS and login.
fn apps_attribute() -> Attribute {
    let s = Attribute::string;
    let n = Attribute::number;
    let [host, auth] = host_and_auth();
    Attribute::map_of_objects(
        "apps",
        vec![
            s("image").optional().validate_str(rule::image_ref).description(
                "The image to run. Exactly one of `image` and `build`.",
            ),
            s("build").optional().description(
                "A local directory with a `Dockerfile` at its top: uploaded to `<remote_dir>/apps/<name>/` (only \
                 changed files move, deleted ones are removed; `.gitignore` and `.cloudcodeignore` are honoured) \
                 and built on the host. A changed file rebuilds and replaces this app only.",
            ),
            n("port").required().validate_i64(|p| {
                if (1..=65535).contains(&p) {
                    Ok(())
                } else {
                    Err(format!("must be a TCP port between 1 and 65535, got {p}"))
                }
            }).description("The port the app listens on inside its container."),
            host,
            auth,
            Attribute::map_of("env", Type::String).optional().description("Environment variables (not secret; they are stored in state)."),
            n("secret_env_wo_version").optional().description(
                "Set (e.g. `1`) to give the app its entry of `app_secret_env_wo`; bump it to apply new values.",
            ),
            Attribute::map_of("volumes", Type::String).optional().description(
                "Named volumes: name → path in the container (`app_<name>_<volume>` on the host). Kept when the \
                 app is removed, and when the stack is destroyed unless `destroy_volumes`.",
            ),
            s("health").optional().description(
                "An HTTP path Caddy checks every 5 s (active health check) before sending requests to the app; \
                 the image needs no curl or shell.",
            ),
            Attribute::list_of("command", Type::String).optional().description("The command, instead of the image's."),
            s("memory").optional().description("Memory limit, e.g. `\"256m\"` or `\"1g\"`."),
        ],
    )
    .optional()
    .description(
        "Your own apps by name (`^[a-z][a-z0-9-]{0,30}$`): each a Compose service `app-<name>` on the stack's \
         network, served by Caddy over HTTPS with the login its `auth` asks for. They publish no port.",
    )
}

/// `static_sites`: local directories served by Caddy.
fn static_sites_attribute() -> Attribute {
    let [host, auth] = host_and_auth();
    Attribute::map_of_objects(
        "static_sites",
        vec![
            Attribute::string("dir").required().description(
                "The local directory to serve: uploaded to `<remote_dir>/sites/<name>/` (only changed files \
                 move, deleted ones are removed).",
            ),
            host,
            auth,
        ],
    )
    .optional()
    .description(
        "Static sites by name, served by Caddy's file server with zstd/gzip and cache headers (names with a content \
         hash such as `app.3f2a9c1b.js` immutable, everything else revalidated). For public front-ends at scale, \
         see the `static-site` module (OSS + CDN).",
    )
}

/// The `im` block: its presence runs the chat bridge (`cloudcode-im`) beside the devbox.
fn im_block() -> Block {
    let s = Attribute::string;
    let n = Attribute::number;
    Block::new(
        "The chat bridge: Telegram and/or DingTalk users talk to this box's OpenCode (bind with `cloudcode im qr`). \
         The block's presence runs the `im` service; removing it removes the service, its configuration and its \
         secrets from the host (the `im_data` volume stays). Needs outbound access to the platform's API (or `proxy_wo`).",
    )
    .attribute(s("telegram_token_wo").optional().sensitive().write_only().validate_str(rule::im_secret).description(
        "The Telegram bot token from @BotFather. **Write-only**: never stored; supply it with a new \
         `telegram_token_wo_version`, otherwise the host keeps its token.",
    ))
    .attribute(n("telegram_token_wo_version").optional().description(
        "Set (e.g. `1`) to turn Telegram on; bump it to apply a new `telegram_token_wo`.",
    ))
    .attribute(s("telegram_api_base").optional().validate_str(rule::http_url).description(
        "Telegram Bot API base URL (a local Bot API server or a mirror). Default `https://api.telegram.org`.",
    ))
    .attribute(s("dingtalk_client_id").optional().validate_str(rule::dingtalk_id).description(
        "The DingTalk app's Client ID (AppKey); setting it turns DingTalk on.",
    ))
    .attribute(s("dingtalk_client_secret_wo").optional().sensitive().write_only().validate_str(rule::im_secret).description(
        "The DingTalk app's Client Secret. **Write-only**: supply it with a new `dingtalk_client_secret_wo_version`.",
    ))
    .attribute(n("dingtalk_client_secret_wo_version").optional().description(
        "Bump to apply a new `dingtalk_client_secret_wo`; required with `dingtalk_client_id`.",
    ))
    .attribute(s("dingtalk_robot_code").optional().validate_str(rule::dingtalk_id).description(
        "The DingTalk robot code. Default: the Client ID.",
    ))
    .attribute(s("proxy_wo").optional().sensitive().write_only().validate_str(rule::proxy_url).description(
        "Proxy for the bridge's platform traffic: an `http://`, `https://` or `socks5://` URL, which may carry \
         credentials. **Write-only**: supply it with a new `proxy_wo_version`.",
    ))
    .attribute(n("proxy_wo_version").optional().description(
        "Set to use `proxy_wo`; bump it to apply a new one. Unset: no proxy.",
    ))
}

fn rule_permission(v: &Value) -> Result<(), String> {
    for (tool, value) in v.as_entries().into_iter().flatten() {
        rule::permission_tool(tool).map_err(|e| e.to_string())?;
        if let Some(p) = value.as_str() {
            rule::permission_value(p).map_err(|e| format!("{tool}: {e}"))?;
        }
    }
    Ok(())
}

fn rule_path(v: &str) -> Result<(), String> {
    if v.trim().is_empty() || v.contains('\0') || v.contains('\n') {
        Err("must be a non-empty file path on a single line".to_string())
    } else {
        Ok(())
    }
}

fn rule_image_keys(v: &Value) -> Result<(), String> {
    let Some(entries) = v.as_entries() else {
        return Ok(());
    };
    match entries.keys().find(|k| !IMAGE_KEYS.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "unknown service {k:?}; images may override: {}",
            IMAGE_KEYS.join(", ")
        )),
        None => Ok(()),
    }
}

fn rule_mirrors_preset(v: &str) -> Result<(), String> {
    cloudcode_bundle::mirrors_preset(v)
        .map(|_| ())
        .ok_or_else(|| format!("{v:?} is not a mirrors preset: the one preset is \"cn\""))
}

fn rule_idle_suspend_after(v: &str) -> Result<(), String> {
    rule::idle_suspend_after(v)
        .map(|_| ())
        .map_err(|e| e.message().to_string())
}

fn rule_no_proxy(v: &Value) -> Result<(), String> {
    rule_each(rule::no_proxy_entry)(v)
}

/// A list whose every string element passes `rule` (the error names the element).
fn rule_each(rule: fn(&str) -> rule::Rule) -> impl Fn(&Value) -> Result<(), String> {
    move |v: &Value| {
        for (i, item) in v.as_elements().unwrap_or_default().iter().enumerate() {
            if let Some(e) = item.as_str() {
                rule(e).map_err(|e| format!("element {i}: {e}"))?;
            }
        }
        Ok(())
    }
}

fn rule_archives(v: &Value) -> Result<(), String> {
    for (i, item) in v.as_elements().unwrap_or_default().iter().enumerate() {
        if let Some(p) = item.as_str() {
            rule_path(p).map_err(|e| format!("element {i}: {e}"))?;
        }
    }
    Ok(())
}
