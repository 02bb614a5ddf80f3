//! `cloudcode-app.toml`: one app or static site as `cloudcode app add` reads it. The fields are those of the
//! stack's `apps` / `static_sites`, plus `name`, an optional `kind` (inferred: `dir` makes a static site) and
//! `secret_env` (names only: the values come from the environment or a prompt, never from a file):
//!
//! ```toml
//! name  = "api"
//! build = "./api"          # or image = "ghcr.io/me/api:1.2"; relative to this file
//! port  = 8000
//! host  = "api"            # default: <name>.<domain>; "/api" for a path of the main site
//! auth  = "public"         # two_factor (default) | one_factor | public
//! secret_env = ["DB_PASSWORD"]
//! [env]
//! LOG_LEVEL = "info"
//! [volumes]
//! data = "/var/lib/api"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cloudcode_bundle::apps::{env_name, App, StaticSite};
use serde::Deserialize;

use crate::commands::input::invalid;
use crate::error::{Error, Result};

/// The file as written; every key optional here so that a missing one gets its own sentence.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Option<String>,
    kind: Option<String>,
    image: Option<String>,
    build: Option<String>,
    port: Option<i64>,
    host: Option<String>,
    auth: Option<String>,
    env: Option<BTreeMap<String, String>>,
    secret_env: Option<Vec<String>>,
    volumes: Option<BTreeMap<String, String>>,
    health: Option<String>,
    command: Option<Vec<String>>,
    memory: Option<String>,
    dir: Option<String>,
}

/// What one file adds to the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An app, and the names of its secret env variables.
    App {
        app: App,
        secret_env: Vec<String>,
    },
    Site(StaticSite),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    pub entry: Entry,
}

impl Entry {
    /// `"app"` or `"static site"`, for sentences.
    pub fn kind(&self) -> &'static str {
        match self {
            Entry::App { .. } => "app",
            Entry::Site(_) => "static site",
        }
    }
}

/// Reads and parses `path`; relative directories are resolved against its directory.
pub fn read(path: &Path) -> Result<Manifest> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    let base = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    parse(&text, &base, &path.display().to_string())
}

/// One sentence about `key` of the file called `file`.
fn refused(file: &str, key: &str, en: impl AsRef<str>, zh: impl AsRef<str>) -> Error {
    Error::input(
        format!("{file}: {key} {}", en.as_ref()),
        format!("{file}：{key} {}", zh.as_ref()),
    )
}

/// The sentence for a key the bundle's rules refused (`key` as the file names it: `auth`, `env.KEY`).
pub fn rule_error(file: &str, key: &str, e: cloudcode_bundle::validate::Invalid) -> Error {
    invalid(&format!("{file}: {key}"), &format!("{file}：{key} "), e)
}

/// Parses the text of `file` (named so in errors); `base` is the directory relative paths start from.
pub fn parse(text: &str, base: &Path, file: &str) -> Result<Manifest> {
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .and_then(|s| text.get(..s.start))
            .map(|before| before.matches('\n').count() + 1);
        let msg = e.message().trim().replace('\n', " ");
        match line {
            Some(l) => Error::input(
                format!("{file} line {l}: {msg}"),
                format!("{file} 第 {l} 行：{msg}"),
            ),
            None => Error::input(format!("{file}: {msg}"), format!("{file}：{msg}")),
        }
    })?;
    let name = raw.name.clone().ok_or_else(|| {
        refused(
            file,
            "name",
            "is required: the app's name, e.g. name = \"api\"",
            "是必需的：应用的名称，例如 name = \"api\"",
        )
    })?;
    let site = match raw.kind.as_deref() {
        None => raw.dir.is_some(),
        Some("app") => false,
        Some("static_site") => true,
        Some(other) => {
            return Err(refused(
                file,
                "kind",
                format!(
                    "\"{}\" is not \"app\" or \"static_site\"",
                    other.escape_debug()
                ),
                format!(
                    "\"{}\" 应为 \"app\" 或 \"static_site\"",
                    other.escape_debug()
                ),
            ))
        }
    };
    let entry = if site {
        site_entry(raw, base, file)?
    } else {
        app_entry(raw, base, file)?
    };
    Ok(Manifest { name, entry })
}

fn site_entry(raw: Raw, base: &Path, file: &str) -> Result<Entry> {
    let app_only = [
        ("image", raw.image.is_some()),
        ("build", raw.build.is_some()),
        ("port", raw.port.is_some()),
        ("env", raw.env.is_some()),
        ("secret_env", raw.secret_env.is_some()),
        ("volumes", raw.volumes.is_some()),
        ("health", raw.health.is_some()),
        ("command", raw.command.is_some()),
        ("memory", raw.memory.is_some()),
    ];
    if let Some((key, _)) = app_only.iter().find(|(_, set)| *set) {
        return Err(refused(
            file,
            key,
            "is an app's setting: a static site takes dir, host and auth",
            "是应用的设置：静态站点只接受 dir、host 和 auth",
        ));
    }
    let dir = raw.dir.ok_or_else(|| {
        refused(
            file,
            "dir",
            "is required for a static site: the local directory to serve",
            "是静态站点必需的：要发布的本地目录",
        )
    })?;
    Ok(Entry::Site(StaticSite {
        dir: local_dir(&dir, base, file, "dir", false)?,
        host: raw.host,
        auth: raw.auth,
    }))
}

fn app_entry(raw: Raw, base: &Path, file: &str) -> Result<Entry> {
    if raw.dir.is_some() {
        return Err(refused(
            file,
            "dir",
            "is a static site's setting (kind = \"static_site\"); an app takes image or build",
            "是静态站点的设置（kind = \"static_site\"）；应用使用 image 或 build",
        ));
    }
    let port = raw.port.ok_or_else(|| {
        refused(
            file,
            "port",
            "is required: the port the app listens on inside its container",
            "是必需的：应用在容器内监听的端口",
        )
    })?;
    let port = u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| {
        refused(
            file,
            "port",
            format!("must be a TCP port between 1 and 65535, got {port}"),
            format!("必须是 1 到 65535 之间的 TCP 端口，而不是 {port}"),
        )
    })?;
    let build = raw
        .build
        .as_deref()
        .map(|b| local_dir(b, base, file, "build", true))
        .transpose()?;
    let env = raw.env.unwrap_or_default();
    let secret_env = raw.secret_env.unwrap_or_default();
    for (i, n) in secret_env.iter().enumerate() {
        env_name(n).map_err(|e| rule_error(file, "secret_env", e))?;
        if env.contains_key(n) || secret_env[..i].contains(n) {
            return Err(refused(
                file,
                "secret_env",
                format!("names {n} twice (or also in env): give each variable one place"),
                format!("两次列出了 {n}（或它也在 env 中）：每个变量只能出现一处"),
            ));
        }
    }
    Ok(Entry::App {
        app: App {
            image: raw.image,
            build,
            port,
            host: raw.host,
            auth: raw.auth,
            env,
            secret_env_wo_version: None,
            volumes: raw.volumes.unwrap_or_default(),
            health: raw.health,
            command: raw.command.unwrap_or_default(),
            memory: raw.memory,
        },
        secret_env,
    })
}

/// `dir` (relative to `base`) as an absolute path to an existing directory; a build directory needs its
/// Dockerfile.
fn local_dir(dir: &str, base: &Path, file: &str, key: &str, build: bool) -> Result<String> {
    let joined: PathBuf = base.join(dir);
    let shown = joined.display().to_string();
    let found = std::fs::canonicalize(&joined)
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| {
            refused(
                file,
                key,
                format!("\"{}\" is not a directory ({shown})", dir.escape_debug()),
                format!("\"{}\" 不是目录（{shown}）", dir.escape_debug()),
            )
        })?;
    if build && !found.join("Dockerfile").is_file() {
        return Err(refused(
            file,
            key,
            format!("{} has no Dockerfile at its top", found.display()),
            format!("{} 顶层没有 Dockerfile", found.display()),
        ));
    }
    found.to_str().map(str::to_string).ok_or_else(|| {
        refused(
            file,
            key,
            format!("{} is not a UTF-8 path", found.display()),
            format!("{} 不是 UTF-8 路径", found.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("api")).unwrap();
        std::fs::write(d.path().join("api/Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::create_dir_all(d.path().join("public")).unwrap();
        d
    }

    fn err(text: &str, base: &Path) -> String {
        parse(text, base, "app.toml").unwrap_err().to_string()
    }

    #[test]
    fn an_app_with_a_build_directory_gets_its_absolute_path() {
        let d = dirs();
        let m = parse(
            "name = \"api\"\nbuild = \"./api\"\nport = 8000\nhost = \"/api\"\nauth = \"public\"\n\
             secret_env = [\"DB_PASSWORD\"]\ncommand = [\"gunicorn\", \"app:app\"]\nmemory = \"256m\"\n\
             [env]\nLOG_LEVEL = \"info\"\n[volumes]\ndata = \"/var/lib/api\"\n",
            d.path(),
            "app.toml",
        )
        .unwrap();
        assert_eq!(m.name, "api");
        let Entry::App { app, secret_env } = m.entry else {
            panic!("an app: {m:?}")
        };
        let expected = std::fs::canonicalize(d.path().join("api")).unwrap();
        assert_eq!(app.build.as_deref(), Some(expected.to_str().unwrap()));
        assert_eq!(app.image, None);
        assert_eq!(app.port, 8000);
        assert_eq!(app.host.as_deref(), Some("/api"));
        assert_eq!(app.auth.as_deref(), Some("public"));
        assert_eq!(app.env.get("LOG_LEVEL").map(String::as_str), Some("info"));
        assert_eq!(
            app.volumes.get("data").map(String::as_str),
            Some("/var/lib/api")
        );
        assert_eq!(app.command, ["gunicorn", "app:app"]);
        assert_eq!(app.memory.as_deref(), Some("256m"));
        assert_eq!(
            app.secret_env_wo_version, None,
            "set when values are applied"
        );
        assert_eq!(secret_env, ["DB_PASSWORD"]);
    }

    #[test]
    fn dir_makes_a_static_site_and_kind_can_say_so() {
        let d = dirs();
        for text in [
            "name = \"docs\"\ndir = \"public\"\nauth = \"one_factor\"\n",
            "name = \"docs\"\nkind = \"static_site\"\ndir = \"public\"\nauth = \"one_factor\"\n",
        ] {
            let m = parse(text, d.path(), "app.toml").unwrap();
            let expected = std::fs::canonicalize(d.path().join("public")).unwrap();
            assert_eq!(
                m.entry,
                Entry::Site(StaticSite {
                    dir: expected.to_str().unwrap().into(),
                    host: None,
                    auth: Some("one_factor".into()),
                })
            );
        }
        // An image app needs no directory.
        let m = parse(
            "name = \"w\"\nimage = \"nginx:1\"\nport = 80\n",
            d.path(),
            "f",
        )
        .unwrap();
        assert!(
            matches!(m.entry, Entry::App { ref app, .. } if app.image.as_deref() == Some("nginx:1"))
        );
    }

    #[test]
    fn refused_files_get_one_sentence_naming_the_key() {
        let d = dirs();
        let p = d.path();
        let e = err("name = \"api\"\nimag = \"x\"\nport = 1\n", p);
        assert!(
            e.starts_with("app.toml line 2: unknown field `imag`"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        let e = err("name = \"api\"\nimage = \"x\"\n", p);
        assert!(e.starts_with("app.toml: port is required"), "{e}");
        let e = err("name = \"api\"\nimage = \"x\"\nport = 70000\n", p);
        assert!(
            e.contains("port must be a TCP port between 1 and 65535, got 70000"),
            "{e}"
        );
        let e = err("image = \"x\"\nport = 80\n", p);
        assert!(e.starts_with("app.toml: name is required"), "{e}");
        let e = err("name = \"a\"\nkind = \"lambda\"\n", p);
        assert!(e.contains("kind \"lambda\" is not"), "{e}");
        let e = err("name = \"a\"\ndir = \"public\"\nport = 80\n", p);
        assert!(e.contains("port is an app's setting"), "{e}");
        let e = err(
            "name = \"a\"\nkind = \"app\"\ndir = \"public\"\nport = 80\n",
            p,
        );
        assert!(e.contains("dir is a static site's setting"), "{e}");
        let e = err("name = \"a\"\nbuild = \"public\"\nport = 80\n", p);
        assert!(
            e.contains("build") && e.contains("has no Dockerfile"),
            "{e}"
        );
        let e = err("name = \"a\"\nbuild = \"nowhere\"\nport = 80\n", p);
        assert!(e.contains("build \"nowhere\" is not a directory"), "{e}");
        let e = err(
            "name = \"a\"\nimage = \"x\"\nport = 80\nsecret_env = [\"1X\"]\n",
            p,
        );
        assert!(
            e.contains("secret_env \"1X\" is not an environment variable name"),
            "{e}"
        );
        let e = err(
            "name = \"a\"\nimage = \"x\"\nport = 80\nsecret_env = [\"K\"]\n[env]\nK = \"v\"\n",
            p,
        );
        assert!(e.contains("secret_env names K twice"), "{e}");
    }
}
