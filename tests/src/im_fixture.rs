//! Runs the real `cloudcode-im` bridge binary for tests: writes its configuration and secret files, starts and
//! stops it (SIGTERM, as `docker stop` does), reads its bind link, and keeps its log for failure messages.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// The bridge binary built by this crate (`cloudcode-im-under-test`), or `CLOUDCODE_IM_BIN`.
pub fn bridge_binary() -> PathBuf {
    crate::im_image::binary_under_test("cloudcode-im-under-test", "CLOUDCODE_IM_BIN")
}

/// One box the bridge serves.
#[derive(Clone, Debug)]
pub struct ImBox {
    pub id: String,
    pub name: String,
    pub opencode_url: String,
}

pub struct ImBridge {
    dir: tempfile::TempDir,
    child: Option<Child>,
    starts: u32,
}

impl ImBridge {
    /// Configures a bridge for `boxes` with Telegram at `telegram` (base URL, token) and/or DingTalk
    /// (`dingtalk`: the `dingtalk` object of the configuration, its secret written to a file), and starts it.
    pub fn start(
        boxes: &[ImBox],
        telegram: Option<(&str, &str)>,
        dingtalk: Option<(Value, &str)>,
    ) -> ImBridge {
        Self::start_with(boxes, telegram, dingtalk, json!({}))
    }

    /// As `start`, with the top-level settings of `extra` (e.g. `{"backlog": 2}`) added to the configuration.
    pub fn start_with(
        boxes: &[ImBox],
        telegram: Option<(&str, &str)>,
        dingtalk: Option<(Value, &str)>,
        extra: Value,
    ) -> ImBridge {
        let dir = tempfile::Builder::new()
            .prefix("im-bridge")
            .tempdir()
            .expect("temp dir");
        let mut cfg = json!({
            "data_dir": dir.path().join("data"),
            "boxes": boxes.iter().map(|b| json!({
                "id": b.id, "name": b.name, "opencode_url": b.opencode_url, "web_url": format!("https://{}.example.test", b.name)
            })).collect::<Vec<_>>(),
        });
        if let Some((base, token)) = telegram {
            let f = dir.path().join("telegram_token");
            write_secret(&f, token);
            cfg["telegram"] = json!({ "token_file": f, "api_base": base });
        }
        if let Some((mut d, secret)) = dingtalk {
            let f = dir.path().join("dingtalk_secret");
            write_secret(&f, secret);
            d["client_secret_file"] = json!(f);
            cfg["dingtalk"] = d;
        }
        if let Value::Object(settings) = extra {
            for (k, v) in settings {
                cfg[k] = v;
            }
        }
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_vec_pretty(&cfg).unwrap(),
        )
        .unwrap();
        let mut b = ImBridge {
            dir,
            child: None,
            starts: 0,
        };
        b.spawn();
        b
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Command::new(bridge_binary())
            .arg("serve")
            .env("CLOUDCODE_IM_CONFIG", self.config_path())
            .env("RUST_LOG", "info,cloudcode_im=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start cloudcode-im");
        self.child = Some(child);
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("bridge.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// SIGTERM, then wait for the process to finish what it was sending.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe_kill(c.id(), 15);
            for _ in 0..300 {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the process is still running (a fatal platform error ends it).
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Runs `cloudcode-im <args>` against the same configuration and parses its JSON line.
    pub fn cli(&self, args: &[&str]) -> Value {
        let out = Command::new(bridge_binary())
            .args(args)
            .env("CLOUDCODE_IM_CONFIG", self.config_path())
            .env("RUST_LOG", "warn")
            .output()
            .expect("run cloudcode-im");
        assert!(
            out.status.success(),
            "cloudcode-im {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "cloudcode-im {args:?} printed no JSON ({e}): {:?}",
                out.stdout
            )
        })
    }

    /// The bind payload of a box (`cloudcode-im link --box`).
    pub fn payload(&self, box_id: &str) -> String {
        self.cli(&["link", "--box", box_id])["payload"]
            .as_str()
            .expect("payload")
            .to_string()
    }
}

impl Drop for ImBridge {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn write_secret(path: &Path, value: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, value).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn unsafe_kill(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}
