//! A real forward proxy for the outbound-proxy scenarios: Debian's `tinyproxy` with Basic auth, listening on
//! one address (the test VM's host side), its log kept to assert on which requests went through it.
//! Killed, with its temp directory removed, on drop.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running tinyproxy.
pub struct ForwardProxy {
    child: Child,
    dir: tempfile::TempDir,
    /// `http://user:password@addr:port`.
    pub url: String,
    pub password: String,
}

/// The tinyproxy binary (`tinyproxy-bin`, installed by scripts/deps/40-testvm.sh), or why there is none.
pub fn tinyproxy_binary() -> Result<PathBuf, String> {
    for p in ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"] {
        if Path::new(p).is_file() {
            return Ok(PathBuf::from(p));
        }
    }
    Err("tinyproxy is not installed (apt-get install tinyproxy-bin; scripts/deps/40-testvm.sh does)".into())
}

impl ForwardProxy {
    /// Starts tinyproxy on `listen` (a free port), accepting clients from `allow` (a CIDR) that authenticate
    /// as `user` / `password`.
    pub fn start(listen: IpAddr, allow: &str, user: &str, password: &str) -> Result<Self, String> {
        let bin = tinyproxy_binary()?;
        let port = crate::net::free_port(listen)?;
        let dir = tempfile::Builder::new()
            .prefix("cloudcode-tinyproxy")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen {listen}\nTimeout 120\nLogLevel Connect\nMaxClients 50\nAllow {allow}\n\
                 BasicAuth {user} {password}\nLogFile \"{log}\"\n",
                log = dir.path().join("tinyproxy.log").display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("tinyproxy: {e}"))?;
        let proxy = Self {
            child,
            dir,
            url: format!("http://{user}:{password}@{listen}:{port}"),
            password: password.to_string(),
        };
        if !crate::net::wait_listening(listen, port, Duration::from_secs(10)) {
            return Err(format!(
                "tinyproxy did not listen on {listen}:{port}:\n{}",
                proxy.log()
            ));
        }
        Ok(proxy)
    }

    /// Everything tinyproxy logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default()
    }

    /// The requests it forwarded, as `METHOD URL` (its `Request (file descriptor N): …` lines).
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| {
                l.split_once("]: Request (file descriptor ")?
                    .1
                    .split_once("): ")
            })
            .map(|(_, r)| {
                r.trim_end_matches(" HTTP/1.1")
                    .trim_end_matches(" HTTP/1.0")
                    .to_string()
            })
            .collect()
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
