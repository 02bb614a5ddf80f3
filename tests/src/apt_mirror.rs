//! An apt mirror for the test VM: its offline package repository served over HTTP, with a request log.
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;

use crate::double_server::DoubleServer;

pub struct AptMirror {
    server: DoubleServer,
    log: Arc<Mutex<Vec<String>>>,
}

/// `path` under `root`, refusing anything that would leave it.
fn under(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = Path::new(path.trim_start_matches('/'));
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| root.join(rel))
}

impl AptMirror {
    /// Serves the files under `root` at their paths (`/<path>`), on `bind`.
    pub fn start(bind: SocketAddr, root: &Path) -> std::io::Result<Self> {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (root, seen) = (root.to_path_buf(), log.clone());
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let (root, seen) = (root.clone(), seen.clone());
            async move {
                // apt asks for file names with their `%` encoded (`dmsetup_2%253a…` for `dmsetup_2%3a…`).
                let path = percent_encoding::percent_decode_str(uri.path())
                    .decode_utf8_lossy()
                    .into_owned();
                seen.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(path.clone());
                match under(&root, &path).and_then(|f| std::fs::read(f).ok()) {
                    Some(bytes) => (StatusCode::OK, bytes).into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }
        });
        let server = DoubleServer::axum("apt-mirror", bind, 1, app)?;
        Ok(Self { server, log })
    }

    /// `http://<address>:<port>`: the mirror's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Every path asked for, in order.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_never_leave_the_root() {
        let root = Path::new("/srv/repo");
        assert_eq!(
            under(root, "/var/local/cloudcode-apt/Packages.gz"),
            Some(PathBuf::from(
                "/srv/repo/var/local/cloudcode-apt/Packages.gz"
            ))
        );
        assert_eq!(under(root, "/../etc/passwd"), None);
        assert_eq!(under(root, "/a/./b"), Some(PathBuf::from("/srv/repo/a/b")));
    }
}
