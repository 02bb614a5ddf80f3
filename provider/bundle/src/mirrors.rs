//! Registry and package mirrors (`mirrors`): the host Docker daemon's `daemon.json` (registry mirrors, insecure
//! registries), the devbox's npm and PyPI index variables, and the checks of each field.

use std::net::IpAddr;

use crate::render::{paths, RenderError};
use crate::settings::{Mirrors, Settings};
use crate::validate::{https_url, Invalid, Rule};

/// The devbox's environment for the package mirrors, in a fixed order.
pub fn devbox_env(s: &Settings) -> Vec<(&'static str, String)> {
    let Some(m) = &s.mirrors else {
        return Vec::new();
    };
    let mut env = Vec::new();
    if let Some(npm) = &m.npm {
        env.push(("NPM_CONFIG_REGISTRY", npm.clone()));
    }
    if let Some(pypi) = &m.pypi {
        env.push(("PIP_INDEX_URL", pypi.clone()));
        env.push(("UV_DEFAULT_INDEX", pypi.clone()));
    }
    env
}

/// `docker/daemon.json`, installed by the deploy as `/etc/docker/daemon.json` (when that file is absent or the
/// one it installed before) and reloaded into the running daemon; `None` when no daemon setting is asked for.
pub fn daemon_json(s: &Settings) -> Result<Option<Vec<u8>>, RenderError> {
    let Some(m) = s
        .mirrors
        .as_ref()
        .filter(|m| !m.registry_mirrors.is_empty() || !m.insecure_registries.is_empty())
    else {
        return Ok(None);
    };
    let mut root = serde_json::Map::new();
    if !m.insecure_registries.is_empty() {
        root.insert(
            "insecure-registries".into(),
            serde_json::json!(m.insecure_registries),
        );
    }
    if !m.registry_mirrors.is_empty() {
        root.insert(
            "registry-mirrors".into(),
            serde_json::json!(m.registry_mirrors),
        );
    }
    let mut text = serde_json::to_string_pretty(&root).map_err(|e| RenderError::Template {
        file: paths::DAEMON_JSON,
        message: e.to_string(),
    })?;
    text.push('\n');
    Ok(Some(text.into_bytes()))
}

/// Every rule of `mirrors`, as (attribute path, error) pairs.
pub fn validate(m: &Mirrors) -> Vec<(String, Invalid)> {
    let mut errors = Vec::new();
    let mut check = |field: &str, r: Rule| {
        if let Err(e) = r {
            errors.push((format!("mirrors.{field}"), e));
        }
    };
    if let Some(r) = &m.image_registry {
        check("image_registry", image_registry(r));
    }
    for u in &m.registry_mirrors {
        check("registry_mirrors", https_url(u));
    }
    for r in &m.insecure_registries {
        check("insecure_registries", registry_host(r));
    }
    if let Some(u) = &m.npm {
        check("npm", https_url(u));
    }
    if let Some(u) = &m.pypi {
        check("pypi", https_url(u));
    }
    if let Some(u) = &m.apt {
        check("apt", apt_mirror(u));
    }
    errors
}

/// `mirrors.apt`: an `http://` or `https://` base URL (host, optional port, optional path of plain characters) —
/// the host's apt sources keep their own path after it. apt verifies the archive's signatures, so plain HTTP
/// (what the in-VPC mirror speaks) is allowed.
pub fn apt_mirror(v: &str) -> Rule {
    let plain = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_/~".contains(&b))
    };
    let ok = url::Url::parse(v).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str().is_some()
            && u.username().is_empty()
            && u.password().is_none()
            && u.query().is_none()
            && u.fragment().is_none()
            && plain(u.path())
    }) && !v.ends_with('/');
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(format!(
            "{} is not an apt mirror base URL such as https://mirrors.aliyun.com (http or https, no trailing slash, \
             no credentials or query)",
            crate::validate::shown(v)
        )))
    }
}

/// `host[:port][/namespace...]`, no scheme and no tag: where the default images are pulled from.
pub fn image_registry(v: &str) -> Rule {
    let (host, path) = v.split_once('/').unwrap_or((v, ""));
    let path_ok = path.is_empty()
        || path.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        });
    if registry_host(host).is_ok() && path_ok && !v.ends_with('/') {
        Ok(())
    } else {
        Err(Invalid::new(format!(
            "{} is not a registry such as registry.cn-hangzhou.aliyuncs.com/team (host, optional port and \
             lower-case namespace; no scheme, no tag)",
            crate::validate::shown(v)
        )))
    }
}

/// A registry as the Docker daemon names it: `host[:port]` or a CIDR block.
pub fn registry_host(v: &str) -> Rule {
    let cidr = crate::validate::is_cidr(v);
    let (host, port) = match v.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (v, None),
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    let host_ok = host.parse::<IpAddr>().is_ok()
        || (!host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                (1..=63).contains(&l.len())
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    if cidr || (host_ok && port_ok) {
        Ok(())
    } else {
        Err(Invalid::new(format!(
            "{} is not a registry host such as mirror.example.com:5000 or 10.0.0.0/8",
            crate::validate::shown(v)
        )))
    }
}
