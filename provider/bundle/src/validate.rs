//! Validation rules for every user-supplied value of `cloudcode_stack`: one pure function per rule, shared by the
//! bundle renderer and the provider's plan-time validation. Errors are human sentences without an attribute path
//! (the caller adds it) and never repeat a secret value.

use std::net::{IpAddr, Ipv4Addr};

use crate::settings::Settings;

/// A rejected value: a human sentence saying what is wrong and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    message: String,
}

impl Invalid {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The sentence, e.g. "must be between 1 and 65535, got 0".
    pub fn message(&self) -> &str {
        &self.message
    }
}

pub type Rule = Result<(), Invalid>;

/// Shows a non-secret value in an error, shortened and with control characters escaped.
pub(crate) fn shown(v: &str) -> String {
    let mut s: String = v
        .chars()
        .take(80)
        .collect::<String>()
        .escape_debug()
        .to_string();
    if v.chars().count() > 80 {
        s.push('…');
    }
    format!("\"{s}\"")
}

/// A lower-case DNS label (letters, digits, inner hyphens; 1..=63 characters).
pub(crate) fn is_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// An RFC 1123 host name (lowercase letters, digits, hyphens; dot-separated labels of 1..=63 characters).
fn hostname_rule(v: &str, max_len: usize) -> Rule {
    if v.is_empty() {
        return Err(Invalid::new("must not be empty"));
    }
    if v.len() > max_len {
        return Err(Invalid::new(format!(
            "must be at most {max_len} characters long, got {}",
            v.len()
        )));
    }
    if !v.split('.').all(is_label) {
        return Err(Invalid::new(format!(
            "{} is not an RFC 1123 host name: use lowercase letters, digits and hyphens in dot-separated labels of 1 to 63 characters that neither start nor end with a hyphen",
            shown(v)
        )));
    }
    Ok(())
}

/// The shortest `idle_suspend_after` accepted (shorter would stop a box between two looks at a user's browser).
pub const IDLE_SUSPEND_MIN: std::time::Duration = std::time::Duration::from_secs(60);

/// `idle_suspend_after`: a duration such as `2h`, `90m` or `1h30m` (digits each followed by `h`, `m` or `s`: the
/// grammar the module's variable accepts too), at least a minute; the parsed duration.
pub fn idle_suspend_after(v: &str) -> Result<std::time::Duration, Invalid> {
    let units_only = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'h' | b'm' | b's'))
        && v.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && v.bytes().last().is_some_and(|b| !b.is_ascii_digit());
    let parsed = units_only
        .then(|| humantime::parse_duration(v).ok())
        .flatten();
    let d = parsed.ok_or_else(|| {
        Invalid::new(format!(
            "{} is not a duration such as \"2h\", \"90m\" or \"1h30m\"",
            shown(v)
        ))
    })?;
    if d < IDLE_SUSPEND_MIN {
        return Err(Invalid::new(format!(
            "{} is shorter than one minute",
            shown(v)
        )));
    }
    Ok(d)
}

/// An API endpoint override: a host name, or an `http(s)://` URL without path, query or credentials.
pub fn endpoint(v: &str) -> Rule {
    if v.contains("://") {
        let u = url::Url::parse(v)
            .map_err(|e| Invalid::new(format!("{} is not a URL: {e}", shown(v))))?;
        if !matches!(u.scheme(), "http" | "https")
            || u.host_str().is_none()
            || !u.username().is_empty()
            || u.password().is_some()
            || u.query().is_some()
            || u.path() != "/"
        {
            return Err(Invalid::new(format!(
                "{} must be a host name or an http(s):// URL with nothing after the host and port",
                shown(v)
            )));
        }
        return Ok(());
    }
    hostname_rule(v, 253)
}

/// SSH target: an IPv4/IPv6 address or an RFC 1123 host name. A name whose last label is all digits is taken for a
/// mistyped IPv4 address (no top-level domain is numeric, RFC 1123 §2.1): `300.1.1.1` is refused here, not later
/// as a failed name lookup.
pub fn host(v: &str) -> Rule {
    if v.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if v.rsplit('.')
        .next()
        .is_some_and(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
    {
        let labels: Vec<&str> = v.split('.').collect();
        let over = labels
            .iter()
            .find(|l| l.parse::<u32>().is_ok_and(|n| n > 255));
        let why = match over {
            Some(o) if labels.len() == 4 => format!("{o} is over 255"),
            _ if labels.len() != 4 => format!("it has {} parts, not 4", labels.len()),
            _ => "each part must be a number from 0 to 255".to_string(),
        };
        return Err(Invalid::new(format!(
            "must be an IP address or a host name: {} is not an IPv4 address ({why})",
            shown(v)
        )));
    }
    hostname_rule(&v.to_ascii_lowercase(), 253).map_err(|e| {
        Invalid::new(format!(
            "must be an IP address or a host name: {}",
            e.message()
        ))
    })
}

/// The site's domain as Caddy, Authelia and DNS need it: lower case, internationalised labels in their ASCII
/// (`xn--`) form as browsers map them (UTS 46): `Code.Example.COM` → `code.example.com`, `例子.中国` →
/// `xn--fsqu00a.xn--fiqs8s`. What is not a name at all comes back unchanged, for [`domain`] to refuse.
pub fn ascii_domain(v: &str) -> String {
    idna::domain_to_ascii(v).unwrap_or_else(|_| v.to_string())
}

/// An `xn--` label is well-formed punycode of a label that is itself valid (no leading, trailing or 3-4 position
/// hyphens) and encodes back to the same text — what Caddy checks strictly.
fn valid_ace_label(l: &str) -> bool {
    let Some(u) = l
        .strip_prefix("xn--")
        .and_then(idna::punycode::decode_to_string)
    else {
        return false;
    };
    let chars: Vec<char> = u.chars().collect();
    let hyphens_misplaced = u.starts_with('-')
        || u.ends_with('-')
        || (chars.len() >= 4 && chars[2] == '-' && chars[3] == '-');
    let encodes_back = idna::domain_to_ascii(&u).is_ok_and(|a| a == l);
    !u.is_ascii() && !hyphens_misplaced && encodes_back
}

/// A TCP port, 1..=65535.
pub fn port(v: i64) -> Rule {
    if (1..=65535).contains(&v) {
        Ok(())
    } else {
        Err(Invalid::new(format!(
            "must be a TCP port between 1 and 65535, got {v}"
        )))
    }
}

/// The alternative HTTPS port (for networks that block 443): 1024..=65535 and not 80/443.
pub fn https_alt_port(v: i64) -> Rule {
    port(v)?;
    if v < 1024 {
        return Err(Invalid::new(format!(
            "must be 1024 or higher (ports 80 and 443 are already used), got {v}"
        )));
    }
    Ok(())
}

/// The site's domain: an RFC 1123 host name with at least two labels, not an IP address; `auth.` is prepended for
/// Authelia, so at most 248 characters. Checked in its [`ascii_domain`] form: upper case and internationalised
/// names (`例子.中国`) are accepted and deployed as that form.
pub fn domain(v: &str) -> Rule {
    if v.parse::<IpAddr>().is_ok() {
        return Err(Invalid::new(format!(
            "{} is an IP address; give a domain name, or leave it empty to use the <a-b-c-d>.sslip.io fallback",
            shown(v)
        )));
    }
    let ascii = ascii_domain(v);
    let v = ascii.as_str();
    hostname_rule(v, 248)?;
    // Labels with "--" in positions 3-4 are reserved (RFC 5891) for `xn--` ones, which must be valid punycode:
    // Caddy checks them strictly.
    if let Some(l) = v
        .split('.')
        .find(|l| l.get(2..4) == Some("--") && !(l.starts_with("xn--") && valid_ace_label(l)))
    {
        return Err(Invalid::new(format!(
            "label {} has \"--\" in positions 3-4, which is reserved for internationalised (xn--) names, and is not one",
            shown(l)
        )));
    }
    if !v.contains('.') {
        return Err(Invalid::new(format!(
            "{} needs at least two labels, e.g. code.example.com",
            shown(v)
        )));
    }
    // The site's domain is the login cookie's domain: Authelia refuses a public suffix there (browsers would
    // share the cookie with every site under it), so refuse it at plan instead of at Authelia's start-up.
    if psl::suffix(v.as_bytes()).is_some_and(|s| s.is_known() && s.as_bytes() == v.as_bytes()) {
        return Err(Invalid::new(format!(
            "{} is a public suffix (like co.uk or github.io), which cannot hold a login cookie; use a name under it, e.g. code.{v}",
            shown(v)
        )));
    }
    Ok(())
}

/// Authelia user name: 1..=64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
pub fn username(v: &str) -> Rule {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.as_bytes()[0].is_ascii_alphanumeric()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(format!(
            "{} is not a valid user name: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            shown(v)
        )))
    }
}

/// An e-mail address: `local@domain` with a conservative local part (`A-Z a-z 0-9 . _ % + -`) and an RFC 1123
/// domain; at most 254 characters.
pub fn email(v: &str) -> Rule {
    let bad = || {
        Invalid::new(format!(
            "{} is not an e-mail address of the form name@example.com (letters, digits and . _ % + - before the @)",
            shown(v)
        ))
    };
    if v.len() > 254 {
        return Err(Invalid::new(format!(
            "must be at most 254 characters long, got {}",
            v.len()
        )));
    }
    let (local, dom) = v.split_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-'))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    if !local_ok || hostname_rule(&dom.to_ascii_lowercase(), 253).is_err() || !dom.contains('.') {
        return Err(bad());
    }
    Ok(())
}

/// The admin password: at least 12 characters, at most 1024, no control characters. Never echoed.
pub fn password(v: &str) -> Rule {
    let n = v.chars().count();
    if n < 12 {
        return Err(Invalid::new(format!(
            "must be at least 12 characters long (got {n})"
        )));
    }
    if n > 1024 {
        return Err(Invalid::new(format!(
            "must be at most 1024 characters long (got {n})"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(Invalid::new(
            "must not contain control characters (newlines, tabs, escape codes)",
        ));
    }
    Ok(())
}

/// An LLM API key: 1..=4096 visible characters without whitespace, single quotes or backslashes (Compose's env-file
/// reader treats a backslash before the closing quote as an escape). Never echoed.
pub fn api_key(v: &str) -> Rule {
    if v.is_empty() || v.len() > 4096 {
        return Err(Invalid::new(format!(
            "must be 1 to 4096 bytes long (got {})",
            v.len()
        )));
    }
    if v.chars()
        .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '\'' | '\\' | '\u{feff}'))
    {
        return Err(Invalid::new(
            "must not contain whitespace, control characters, single quotes (') or backslashes",
        ));
    }
    Ok(())
}

/// The admin's display name: 1..=100 characters, no control characters (any script is fine).
pub fn display_name(v: &str) -> Rule {
    let n = v.chars().count();
    if n == 0 || n > 100 {
        return Err(Invalid::new(format!(
            "must be 1 to 100 characters long, got {n}"
        )));
    }
    if v.chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}'))
    {
        return Err(Invalid::new(format!(
            "{} must not contain control characters or line breaks",
            shown(v)
        )));
    }
    Ok(())
}

/// The LLM providers cloudcode configures.
pub const LLM_PROVIDERS: [&str; 4] = ["openai", "anthropic", "gemini", "openai_compatible"];

/// One of [`LLM_PROVIDERS`].
pub fn llm_provider(v: &str) -> Rule {
    one_of(v, &LLM_PROVIDERS)
}

/// `acme` (public certificates) or `internal` (Caddy's own CA, for private networks and tests).
pub fn tls_mode(v: &str) -> Rule {
    one_of(v, &["acme", "internal"])
}

/// `auto` (install Docker if missing) or `skip`.
pub fn docker_install(v: &str) -> Rule {
    one_of(v, &["auto", "skip"])
}

fn one_of(v: &str, allowed: &[&str]) -> Rule {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(Invalid::new(format!(
            "{} is not one of: {}",
            shown(v),
            allowed.join(", ")
        )))
    }
}

/// An https:// base URL with a host, without credentials, whitespace, quotes, braces or backslashes. Plain
/// http:// is accepted only to a private, loopback or link-local IP address (a model server in the same private
/// network, e.g. Ollama or vLLM in the VPC): the key never crosses a public network unencrypted.
pub fn https_url(v: &str) -> Rule {
    if v.chars().any(|c| {
        c.is_control()
            || c.is_whitespace()
            || matches!(c, '"' | '\'' | '{' | '}' | '\\' | '`' | '<' | '>' | '$')
    }) {
        return Err(Invalid::new(format!(
            "{} must not contain whitespace, quotes, braces, backslashes, '$' or control characters",
            shown(v)
        )));
    }
    if v.len() > 2048 {
        return Err(Invalid::new(format!(
            "must be at most 2048 characters long, got {}",
            v.len()
        )));
    }
    let u =
        url::Url::parse(v).map_err(|e| Invalid::new(format!("{} is not a URL: {e}", shown(v))))?;
    let private_http = u.scheme() == "http"
        && match u.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_private() || ip.is_loopback() || ip.is_link_local(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback() || (ip.segments()[0] & 0xfe00) == 0xfc00,
            _ => false,
        };
    if u.scheme() != "https" && !private_http {
        return Err(Invalid::new(format!(
            "{} must start with https:// (the key is sent to it), or http:// to a private IP address",
            shown(v)
        )));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(Invalid::new(format!("{} has no host", shown(v))));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(Invalid::new(
            "must not contain credentials (user:password@); the API key is set separately",
        ));
    }
    Ok(())
}

/// The directory on the host: absolute, `A-Z a-z 0-9 . _ - /` only, no `.`/`..` components, not `/`, at most 200
/// characters.
pub fn remote_dir(v: &str) -> Rule {
    let ok = v.starts_with('/')
        && v.len() > 1
        && v.len() <= 200
        && !v.ends_with('/')
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        && v[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(format!(
            "{} must be an absolute directory such as /opt/cloudcode: letters, digits, '.', '_', '-' and '/', no '..', no trailing '/'",
            shown(v)
        )))
    }
}

/// A name of the IANA time zone database (compiled in, `chrono-tz`), such as `UTC`, `Asia/Shanghai` or
/// `America/Argentina/Buenos_Aires`: a well-formed name that is not one (`Mars/Olympus`) would make the containers
/// run in UTC without a word.
pub fn timezone(v: &str) -> Rule {
    if v.parse::<chrono_tz::Tz>().is_ok() {
        return Ok(());
    }
    let hint = chrono_tz::Tz::from_str_insensitive(v)
        .map(|z| format!(" (did you mean {}?)", z.name()))
        .unwrap_or_default();
    Err(Invalid::new(format!(
        "{} is not a time zone of the IANA database such as UTC, Asia/Shanghai or Europe/Berlin{hint}",
        shown(v)
    )))
}

fn path_component_ok(c: &str) -> bool {
    // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    if !c
        .bytes()
        .all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || matches!(x, b'.' | b'_' | b'-'))
    {
        return false;
    }
    // separators: '.', '_', '__', or runs of '-'; never mixed or doubled dots
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// A container image reference, `[registry[:port]/]path[:tag][@sha256:<64 hex>]`, per the distribution
/// reference grammar (lowercase path components), at most 255 characters.
pub fn image_ref(v: &str) -> Rule {
    let bad = |why: &str| {
        Invalid::new(format!(
            "{} is not an image reference such as docker.io/library/caddy:2.10.2 or registry.example.com:5000/team/devbox@sha256:<digest>: {why}",
            shown(v)
        ))
    };
    if v.is_empty() || v.len() > 255 {
        return Err(bad("it must be 1 to 255 characters long"));
    }
    let (name_tag, digest) = match v.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (v, None),
    };
    if let Some(d) = digest {
        let hex_ok = d.strip_prefix("sha256:").is_some_and(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if !hex_ok {
            return Err(bad(
                "the digest must be sha256: followed by 64 lowercase hex digits",
            ));
        }
    }
    // The tag is after the last ':' that follows the last '/'.
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    if let Some(t) = tag {
        let tb = t.as_bytes();
        let ok = !tb.is_empty()
            && tb.len() <= 128
            && (tb[0].is_ascii_alphanumeric() || tb[0] == b'_')
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !ok {
            return Err(bad(
                "the tag must be 1 to 128 letters, digits, '_', '.' or '-'",
            ));
        }
    }
    let mut comps: Vec<&str> = name.split('/').collect();
    if comps.len() > 1 {
        let first = comps[0];
        let is_registry = first.contains('.') || first.contains(':') || first == "localhost";
        if is_registry {
            let (h, p) = match first.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (first, None),
            };
            let host_ok = hostname_rule(&h.to_ascii_lowercase(), 253).is_ok()
                || h.parse::<Ipv4Addr>().is_ok();
            let port_ok = p.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
            if !host_ok || !port_ok {
                return Err(bad(
                    "the registry must be a host name with an optional :port",
                ));
            }
            comps.remove(0);
        }
    }
    if comps.is_empty() || !comps.iter().all(|c| path_component_ok(c)) {
        return Err(bad("path components must be lowercase letters and digits separated by '.', '_', '__' or '-'"));
    }
    Ok(())
}

/// An OpenCode version: semantic version `MAJOR.MINOR.PATCH[-pre]` (the npm package `opencode-ai`).
pub fn opencode_version(v: &str) -> Rule {
    match semver::Version::parse(v) {
        Ok(ver) if ver.build.is_empty() && v.len() <= 64 => Ok(()),
        _ => Err(Invalid::new(format!(
            "{} is not a version such as 1.18.33",
            shown(v)
        ))),
    }
}

/// An LLM model name such as `gpt-4.1`, `claude-sonnet-4-5` or `qwen2.5-coder:32b`: 1..=200 of
/// `A-Z a-z 0-9 . _ : / @ + -`.
pub fn model_name(v: &str) -> Rule {
    let ok = !v.is_empty()
        && v.len() <= 200
        && v.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'@' | b'+' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(format!(
            "{} is not a model name: use 1 to 200 letters, digits and . _ : / @ + -",
            shown(v)
        )))
    }
}

/// An SSH host key to pin: either a public key line `<type> <base64>` (as in known_hosts, without the host
/// column; a trailing comment is allowed) or an OpenSSH fingerprint `SHA256:<43 base64 characters>`.
pub fn ssh_host_key(v: &str) -> Rule {
    use base64::Engine;
    const TYPES: [&str; 6] = [
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
    ];
    let bad = || {
        Invalid::new(format!(
            "{} is not an SSH host key: give \"ssh-ed25519 AAAA...\" (from ssh-keyscan) or a fingerprint \"SHA256:...\"",
            shown(v)
        ))
    };
    if let Some(fp) = v.strip_prefix("SHA256:") {
        let e = base64::engine::general_purpose::STANDARD_NO_PAD;
        return match e.decode(fp) {
            Ok(b) if b.len() == 32 => Ok(()),
            _ => Err(bad()),
        };
    }
    let mut parts = v.split_whitespace();
    let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
        return Err(bad());
    };
    if !TYPES.contains(&kind) {
        return Err(Invalid::new(format!(
            "unsupported SSH key type {}; expected one of: {}",
            shown(kind),
            TYPES.join(", ")
        )));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| bad())?;
    // The blob starts with the length-prefixed key type.
    let n = kind.len();
    let ok = raw.len() > 4 + n
        && raw[..4] == (n as u32).to_be_bytes()
        && &raw[4..4 + n] == kind.as_bytes();
    if !ok {
        return Err(Invalid::new(format!(
            "the key data does not match its type {}",
            shown(kind)
        )));
    }
    Ok(())
}

/// The wildcard-DNS services a host without its own domain can be named by (`a-b-c-d.<service>` resolves to
/// `a.b.c.d` on each); the first is the default.
pub const FALLBACK_DOMAIN_SERVICES: [&str; 2] = ["sslip.io", "nip.io"];

/// `fallback_domain_service`: one of [`FALLBACK_DOMAIN_SERVICES`].
pub fn fallback_domain_service(v: &str) -> Rule {
    if FALLBACK_DOMAIN_SERVICES.contains(&v) {
        Ok(())
    } else {
        Err(Invalid::new(format!(
            "{} is not a fallback domain service: use sslip.io or nip.io",
            shown(v)
        )))
    }
}

/// The `<a-b-c-d>.sslip.io` domain for a host without its own domain: `"47.1.2.3"` → `"47-1-2-3.sslip.io"`.
/// IPv4 only.
pub fn fallback_domain(ip: &str) -> Result<String, Invalid> {
    fallback_domain_on(ip, FALLBACK_DOMAIN_SERVICES[0])
}

/// The `<a-b-c-d>.<service>` domain of an IPv4 address on one of [`FALLBACK_DOMAIN_SERVICES`]:
/// `("47.1.2.3", "nip.io")` → `"47-1-2-3.nip.io"`.
pub fn fallback_domain_on(ip: &str, service: &str) -> Result<String, Invalid> {
    fallback_domain_service(service)?;
    if ip.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(Invalid::new(format!(
            "{} is an IPv6 address; the {service} fallback domain needs an IPv4 address (set domain instead)",
            shown(ip)
        )));
    }
    let addr: Ipv4Addr = ip.parse().map_err(|_| {
        Invalid::new(format!(
            "{} is not an IPv4 address such as 47.1.2.3",
            shown(ip)
        ))
    })?;
    let [a, b, c, d] = addr.octets();
    Ok(format!("{a}-{b}-{c}-{d}.{service}"))
}

/// OpenCode's permission values.
pub const OPENCODE_PERMISSIONS: [&str; 3] = ["ask", "allow", "deny"];

/// A tool name in `opencode_permission`: lowercase letters, `_` and `*` (e.g. `bash`, `edit`, `*`).
pub fn permission_tool(v: &str) -> Rule {
    if v.is_empty()
        || v.len() > 64
        || !v
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'*')
    {
        return Err(Invalid::new(format!(
            "the tool name {} must be 1 to 64 lowercase letters, '_' or '*'",
            shown(v)
        )));
    }
    Ok(())
}

/// A permission in `opencode_permission`: one of [`OPENCODE_PERMISSIONS`].
pub fn permission_value(v: &str) -> Rule {
    one_of(v, &OPENCODE_PERMISSIONS)
}

/// An http(s) API base URL for the chat platforms (a private Bot API server or a mirror may be plain http).
pub fn http_url(v: &str) -> Rule {
    let bad = v.is_empty()
        || v.len() > 2048
        || v.chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '"' | '\\' | '{' | '}'));
    let parsed = url::Url::parse(v).ok();
    match parsed {
        Some(u)
            if !bad
                && matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some()
                && u.password().is_none() =>
        {
            Ok(())
        }
        _ => Err(Invalid::new(format!(
            "{} is not an http:// or https:// URL with a host (and without credentials)",
            shown(v)
        ))),
    }
}

/// An outbound proxy (`proxy_wo`, `im.proxy_wo`): an `http://`, `https://` or `socks5://` URL with a host; it may
/// carry credentials, so the error never shows it.
pub fn proxy_url(v: &str) -> Rule {
    if v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Invalid::new(
            "must not contain whitespace or control characters (the value is not shown: it may hold credentials)",
        ));
    }
    if v.contains(['\'', '\\']) {
        return Err(Invalid::new(
            "must not contain ' or \\ (percent-encode them in the password: %27, %5C; the value is not shown: it may \
             hold credentials)",
        ));
    }
    let u = url::Url::parse(v).map_err(|_| {
        Invalid::new("is not a URL such as socks5://host:1080 (the value is not shown: it may hold credentials)")
    })?;
    if !matches!(u.scheme(), "http" | "https" | "socks5") {
        return Err(Invalid::new(format!(
            "the scheme {} is not one of http, https, socks5",
            shown(u.scheme())
        )));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(Invalid::new(
            "has no host (the value is not shown: it may hold credentials)",
        ));
    }
    Ok(())
}

/// One `no_proxy` entry: a host name (`.example.com` for its subdomains too), an IP address or a CIDR block, as
/// curl, git, npm, pip and Bun read `NO_PROXY`.
pub fn no_proxy_entry(v: &str) -> Rule {
    let name = v.strip_prefix('.').unwrap_or(v);
    let cidr = v.split_once('/').and_then(|(ip, len)| {
        let ip: IpAddr = ip.parse().ok()?;
        let len: u8 = len.parse().ok()?;
        (len <= if ip.is_ipv4() { 32 } else { 128 }).then_some(())
    });
    if v.parse::<IpAddr>().is_ok()
        || cidr.is_some()
        || (!name.is_empty() && domain_name_shape(name))
    {
        Ok(())
    } else {
        Err(Invalid::new(format!(
            "{} is not a host name, IP address or CIDR block (e.g. .corp.example.com, 10.0.0.0/8)",
            shown(v)
        )))
    }
}

/// An IPv4 block up to /32 or an IPv6 block up to /128, e.g. `10.0.0.0/8`.
pub fn is_cidr(v: &str) -> bool {
    v.split_once('/').is_some_and(
        |(ip, len)| match (ip.parse::<IpAddr>(), len.parse::<u8>()) {
            (Ok(ip), Ok(len)) => len <= if ip.is_ipv4() { 32 } else { 128 },
            _ => false,
        },
    )
}

/// Letters, digits and hyphens in dot-separated labels of 1..=63 (a name that need not be fully qualified).
fn domain_name_shape(v: &str) -> bool {
    v.len() <= 253
        && v.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// A chat platform secret (bot token, app secret): 1..=4096 visible characters, no whitespace. Never echoed.
pub fn im_secret(v: &str) -> Rule {
    if v.is_empty() || v.len() > 4096 {
        return Err(Invalid::new(format!(
            "must be 1 to 4096 bytes long (got {})",
            v.len()
        )));
    }
    if v.chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\u{feff}')
    {
        return Err(Invalid::new(
            "must not contain whitespace or control characters",
        ));
    }
    Ok(())
}

/// A DingTalk client id (AppKey) or robot code: 1..=128 ASCII letters, digits, `-`, `_` or `.`.
pub fn dingtalk_id(v: &str) -> Rule {
    if v.is_empty()
        || v.len() > 128
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(Invalid::new(format!(
            "{} must be 1 to 128 ASCII letters, digits, '-', '_' or '.'",
            shown(v)
        )));
    }
    Ok(())
}

/// The bridge's box id: 1..=[`crate::render::IM_BOX_ID_MAX`] ASCII letters or digits.
pub fn im_box_id(v: &str) -> Rule {
    if v.is_empty()
        || v.len() > crate::render::IM_BOX_ID_MAX
        || !v.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(Invalid::new(format!(
            "{} must be 1 to {} ASCII letters or digits",
            shown(v),
            crate::render::IM_BOX_ID_MAX
        )));
    }
    Ok(())
}

/// Every rule that applies to the settings, as (Terraform attribute name, error). Empty means valid.
pub fn validate(s: &Settings) -> Vec<(String, Invalid)> {
    let mut out = Vec::new();
    let mut check = |field: &str, r: Rule| {
        if let Err(e) = r {
            out.push((field.to_string(), e));
        }
    };
    // Rendering writes the domain as it is: the settings carry its ASCII form (the provider and the CLI convert
    // what the user wrote with `ascii_domain`), or Caddy would serve a name Authelia's cookie does not match.
    check(
        "domain",
        domain(&s.domain).and_then(|()| {
            let ascii = ascii_domain(&s.domain);
            if ascii == s.domain {
                Ok(())
            } else {
                Err(Invalid::new(format!(
                    "{} must be given in its ASCII form {} here",
                    shown(&s.domain),
                    shown(&ascii)
                )))
            }
        }),
    );
    check("admin_username", username(&s.admin_username));
    check("admin_email", email(&s.admin_email));
    if let Some(n) = &s.admin_display_name {
        check("admin_display_name", display_name(n));
    }
    check("llm_provider", llm_provider(&s.llm_provider));
    if let Some(u) = &s.llm_base_url {
        check("llm_base_url", https_url(u));
    }
    if s.llm_provider == "openai_compatible" && s.llm_base_url.is_none() {
        check(
            "llm_base_url",
            Err(Invalid::new(
                "is required when llm_provider is \"openai_compatible\"",
            )),
        );
    }
    if s.llm_provider == "openai_compatible" && s.llm_model.is_none() {
        check(
            "llm_model",
            Err(Invalid::new(
                "is required when llm_provider is \"openai_compatible\"",
            )),
        );
    }
    if let Some(m) = &s.llm_model {
        check("llm_model", model_name(m));
    }
    check("opencode_version", opencode_version(&s.opencode_version));
    for (field, img) in [
        ("images.caddy", &s.images.caddy),
        ("images.authelia", &s.images.authelia),
        ("images.devbox", &s.images.devbox),
        ("images.im", &s.images.im),
        ("images.agent", &s.images.agent),
    ] {
        if let Some(i) = img {
            check(field, image_ref(i));
        }
    }
    if let Some(idle) = &s.idle_suspend {
        check(
            "idle_suspend_after",
            idle_suspend_after(&idle.after).map(|_| ()),
        );
        if let Some(e) = &idle.ecs_endpoint {
            check("idle_suspend_endpoint", endpoint(e));
        }
    }
    for entry in &s.no_proxy {
        check("no_proxy", no_proxy_entry(entry));
    }
    if let Some(m) = &s.mirrors {
        for (field, e) in crate::mirrors::validate(m) {
            check(&field, Err(e));
        }
    }
    if let Some(p) = s.https_alt_port {
        check("https_alt_port", https_alt_port(i64::from(p)));
    }
    check("tls_mode", tls_mode(&s.tls_mode));
    if let Some(e) = &s.acme_email {
        check("acme_email", email(e));
    }
    check("timezone", timezone(&s.timezone));
    check("remote_dir", remote_dir(&s.remote_dir));
    for (field, v) in [
        (
            "admin_password_wo_version",
            Some(s.admin_password_wo_version),
        ),
        ("llm_api_key_wo_version", s.llm_api_key_wo_version),
    ] {
        if let Some(v) = v {
            if v < 0 {
                check(
                    field,
                    Err(Invalid::new(format!("must be zero or positive, got {v}"))),
                );
            }
        }
    }
    for (tool, value) in &s.opencode_permission {
        let field = format!("opencode_permission.{tool}");
        check(&field, permission_tool(tool));
        check(&field, permission_value(value));
    }
    if let Some(im) = &s.im {
        check_im(im, &mut check);
    }
    out.extend(crate::apps::validate(&s.apps, &s.static_sites, &s.domain));
    out
}

/// The `im` block's rules (field names `im.<attribute>`).
fn check_im(im: &crate::settings::ImSettings, check: &mut impl FnMut(&str, Rule)) {
    check("im.box_id", im_box_id(&im.box_id));
    if !im.telegram() && !im.dingtalk() {
        check(
            "im",
            Err(Invalid::new(
                "configures no chat platform: set telegram_token_wo (with telegram_token_wo_version) or dingtalk_client_id (with dingtalk_client_secret_wo and its version)",
            )),
        );
    }
    check("im.telegram_api_base", http_url(&im.telegram_api_base));
    if let Some(id) = &im.dingtalk_client_id {
        check("im.dingtalk_client_id", dingtalk_id(id));
        if im.dingtalk_client_secret_wo_version.is_none() {
            check(
                "im.dingtalk_client_secret_wo_version",
                Err(Invalid::new("is required with dingtalk_client_id (set it to 1 and pass dingtalk_client_secret_wo)")),
            );
        }
    } else if im.dingtalk_client_secret_wo_version.is_some() || im.dingtalk_robot_code.is_some() {
        check(
            "im.dingtalk_client_id",
            Err(Invalid::new(
                "is required when the DingTalk secret or robot code is set",
            )),
        );
    }
    if let Some(c) = &im.dingtalk_robot_code {
        check("im.dingtalk_robot_code", dingtalk_id(c));
    }
    for (field, v) in [
        ("im.telegram_token_wo_version", im.telegram_token_wo_version),
        (
            "im.dingtalk_client_secret_wo_version",
            im.dingtalk_client_secret_wo_version,
        ),
        ("im.proxy_wo_version", im.proxy_wo_version),
    ] {
        if let Some(v) = v.filter(|v| *v < 0) {
            check(
                field,
                Err(Invalid::new(format!("must be zero or positive, got {v}"))),
            );
        }
    }
}
