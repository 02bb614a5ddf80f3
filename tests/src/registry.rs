//! A real image registry for the mirror scenarios: Debian's `docker-registry` (the CNCF Distribution registry,
//! plain HTTP) on one address (the test VM's host side), images pushed into it from `docker save` archives with
//! Debian's `skopeo`, and its access log kept to assert on which images it served. Killed on drop.

use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running registry.
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    /// `host:port`, as image references and the Docker daemon name it.
    pub address: String,
}

/// Why the registry or skopeo is missing (installed by scripts/deps/40-testvm.sh), if they are.
pub fn tools_missing() -> Option<String> {
    ["/usr/bin/docker-registry", "/usr/bin/skopeo"]
        .into_iter()
        .find(|p| !Path::new(p).is_file())
        .map(|p| format!("{p} is missing (apt-get install docker-registry skopeo; scripts/deps/40-testvm.sh does)"))
}

impl Registry {
    /// Starts the registry on a free port of `listen`.
    pub fn start(listen: IpAddr) -> Result<Self, String> {
        if let Some(why) = tools_missing() {
            return Err(why);
        }
        let port = crate::net::free_port(listen)?;
        let dir = tempfile::Builder::new()
            .prefix("cloudcode-registry")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let conf = dir.path().join("config.yml");
        std::fs::write(
            &conf,
            format!(
                "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {data}\n\
                 http:\n  addr: {listen}:{port}\n",
                data = dir.path().join("data").display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let log =
            std::fs::File::create(dir.path().join("registry.log")).map_err(|e| e.to_string())?;
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("docker-registry: {e}"))?;
        let registry = Self {
            child,
            dir,
            address: format!("{listen}:{port}"),
        };
        if !crate::net::wait_listening(listen, port, Duration::from_secs(15)) {
            return Err(format!(
                "the registry did not listen on {}:\n{}",
                registry.address,
                registry.log()
            ));
        }
        Ok(registry)
    }

    /// Pushes the one image of a `docker save` archive as `<address>/<reference>` (e.g. `cloudcode/caddy:2.10.2`).
    pub fn push(&self, archive: &Path, reference: &str) -> Result<(), String> {
        let out = Command::new("/usr/bin/skopeo")
            .args([
                "--insecure-policy",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
            ])
            .arg(format!("docker-archive:{}", archive.display()))
            .arg(format!("docker://{}/{reference}", self.address))
            .output()
            .map_err(|e| format!("skopeo: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "skopeo copy {} → {reference}: {}",
                archive.display(),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Everything the registry logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The manifests it answered with 200 to `client` (a HEAD or GET, by tag or by digest), as `name:reference`
    /// (its access log lines `"HEAD /v2/<name>/manifests/<reference> HTTP/1.1" 200`).
    pub fn manifests_served_to(&self, client: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.starts_with(&format!("{client} ")))
            .filter_map(|l| {
                let req = l
                    .split_once("\"GET /v2/")
                    .or_else(|| l.split_once("\"HEAD /v2/"))?
                    .1;
                let (path, rest) = req.split_once(' ')?;
                let status = rest.split_once("\" ")?.1.split_whitespace().next()?;
                let (name, reference) = path.split_once("/manifests/")?;
                (status == "200").then(|| format!("{name}:{reference}"))
            })
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
