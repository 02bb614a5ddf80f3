//! The activity signals: Caddy's access log, busy OpenCode sessions, host logins (utmp), the chat store.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use time::OffsetDateTime;

use crate::decide::Activity;

/// User agents of cloudcode's own checks (the deploy's site check), which are not use of the box.
pub const OWN_CHECK_USER_AGENT: &str = "cloudcode-check";
/// The newest end of the access log read at each look.
const LOG_TAIL_BYTES: u64 = 256 * 1024;

/// The newest request in Caddy's JSON access log that is not one of cloudcode's own checks.
pub fn caddy_requests(log: &Path) -> std::io::Result<Option<Activity>> {
    let mut f = std::fs::File::open(log)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))?;
    let mut bytes = Vec::new();
    f.take(LOG_TAIL_BYTES).read_to_end(&mut bytes)?;
    // The tail may start inside a line (and a UTF-8 sequence): that line does not parse and is skipped.
    let tail = String::from_utf8_lossy(&bytes);
    Ok(tail.lines().rev().find_map(request_entry))
}

/// One access log line → its time and what was asked, when it is use of the box: an HTTPS request that passed the
/// login and reached the devbox. Not use: plain HTTP (Caddy's redirect to HTTPS), cloudcode's own checks, the login
/// portal (`auth.<domain>`), and requests the login turned away (401, 403, any redirect: to the portal, or one of
/// the app's own, which the next request it leads to counts for) — the internet's scanners must not keep a box up.
fn request_entry(line: &str) -> Option<Activity> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let ts = v["ts"].as_f64()?;
    let req = &v["request"];
    let first = |h: &serde_json::Value| {
        h.as_array()
            .and_then(|a| a.first())
            .and_then(|x| x.as_str())
            .map(str::to_string)
    };
    let own =
        first(&req["headers"]["User-Agent"]).is_some_and(|u| u.starts_with(OWN_CHECK_USER_AGENT));
    let portal = req["host"].as_str().is_some_and(|h| h.starts_with("auth."));
    let https = req["tls"].is_object();
    let status = v["status"].as_u64().unwrap_or(0);
    let turned_away = status == 401 || status == 403 || (300..400).contains(&status);
    if own || portal || !https || turned_away {
        return None;
    }
    let at = OffsetDateTime::from_unix_timestamp_nanos((ts * 1e9) as i128).ok()?;
    let what = format!(
        "request {} {}{}",
        req["method"].as_str().unwrap_or("?"),
        req["host"].as_str().unwrap_or(""),
        req["uri"].as_str().unwrap_or("")
    );
    Some(Activity::new(what, at))
}

/// OpenCode working on a prompt: a session whose status is not `idle` (`GET /session/status`).
pub async fn opencode_busy(
    http: &reqwest::Client,
    base: &str,
    now: OffsetDateTime,
) -> Result<Option<Activity>, reqwest::Error> {
    let url = format!("{}/session/status", base.trim_end_matches('/'));
    let status: serde_json::Value = http
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(busy_session(&status).map(|id| Activity::new(format!("OpenCode session {id} busy"), now)))
}

/// The first session in a `/session/status` answer that is not idle.
fn busy_session(status: &serde_json::Value) -> Option<String> {
    status.as_object()?.iter().find_map(|(id, s)| {
        let kind = s["type"].as_str().unwrap_or("idle");
        (kind != "idle").then(|| id.clone())
    })
}

/// Size of one `struct utmp` record on Linux x86_64 and aarch64 (glibc).
const UTMP_RECORD: usize = 384;
/// `ut_type` of a logged-in user's session.
const USER_PROCESS: i16 = 7;

/// Someone logged in on the host now (a USER_PROCESS entry in utmp): an open SSH session is use of the box.
pub fn logins(utmp: &Path, now: OffsetDateTime) -> std::io::Result<Option<Activity>> {
    let bytes = std::fs::read(utmp)?;
    Ok(bytes.chunks_exact(UTMP_RECORD).find_map(|r| {
        let kind = i16::from_ne_bytes([r[0], r[1]]);
        (kind == USER_PROCESS).then(|| {
            let line = c_string(&r[8..40]);
            let user = c_string(&r[44..76]);
            Activity::new(format!("login {user} on {line}"), now)
        })
    }))
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The chat bridge's store last written (a message in or out, a binding): the newest file time in its directory.
pub fn chat_store(dir: &Path) -> std::io::Result<Option<Activity>> {
    let mut newest: Option<std::time::SystemTime> = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        // SQLite's shared-memory index changes on reads too.
        if entry.file_name().to_string_lossy().ends_with("-shm") {
            continue;
        }
        let meta = entry.metadata()?;
        if meta.is_file() {
            let m = meta.modified()?;
            newest = Some(newest.map_or(m, |n| n.max(m)));
        }
    }
    Ok(newest.map(|m| Activity::new("chat bridge message", OffsetDateTime::from(m))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn entry(ts: f64, host: &str, uri: &str, ua: &str, status: u16, location: &str) -> String {
        serde_json::json!({
            "level": "info", "ts": ts, "logger": "http.log.access.log0", "msg": "handled request",
            "request": {"remote_ip": "198.51.100.9", "method": "GET", "host": host, "uri": uri,
                        "headers": {"User-Agent": [ua]}, "tls": {"resumed": false, "version": 772}},
            "status": status, "resp_headers": {"Location": [location]}
        })
        .to_string()
    }

    fn line(ts: f64, uri: &str, ua: &str) -> String {
        entry(ts, "box.example.com", uri, ua, 200, "")
    }

    #[test]
    fn the_newest_request_counts_and_our_own_checks_do_not() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "{}", line(1_796_000_000.5, "/terminal/", "Mozilla/5.0")).unwrap();
        writeln!(f, "{}", line(1_796_000_100.0, "/", "cloudcode-check/1")).unwrap();
        writeln!(f, "not json").unwrap();
        let a = caddy_requests(f.path()).unwrap().unwrap();
        assert_eq!(a.at.unix_timestamp(), 1_796_000_000);
        assert_eq!(a.signal, "request GET box.example.com/terminal/");
        let empty = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(caddy_requests(empty.path()).unwrap(), None);
    }

    #[test]
    fn requests_the_login_turned_away_and_the_portal_are_not_use() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "{}", line(1_796_000_000.0, "/", "Mozilla/5.0")).unwrap();
        for turned_away in [
            entry(
                1_796_000_010.0,
                "box.example.com",
                "/.env",
                "scanner",
                302,
                "https://auth.box.example.com/?rd=x",
            ),
            entry(1_796_000_020.0, "box.example.com", "/api", "curl", 401, ""),
            entry(
                1_796_000_030.0,
                "auth.box.example.com",
                "/",
                "Mozilla/5.0",
                200,
                "",
            ),
        ] {
            writeln!(f, "{turned_away}").unwrap();
        }
        // Plain HTTP (Caddy's redirect to HTTPS, logged for the site's names) is no use either.
        let mut http: serde_json::Value =
            serde_json::from_str(&line(1_796_000_040.0, "/", "crawler")).unwrap();
        http["request"].as_object_mut().unwrap().remove("tls");
        writeln!(f, "{http}").unwrap();
        let a = caddy_requests(f.path()).unwrap().unwrap();
        assert_eq!(a.at.unix_timestamp(), 1_796_000_000, "{a:?}");
        // The next request through the login is.
        writeln!(f, "{}", line(1_796_000_050.0, "/session", "Mozilla/5.0")).unwrap();
        assert_eq!(
            caddy_requests(f.path())
                .unwrap()
                .unwrap()
                .at
                .unix_timestamp(),
            1_796_000_050
        );
    }

    #[test]
    fn a_session_that_is_not_idle_is_busy() {
        let idle = serde_json::json!({"ses_1": {"type": "idle"}});
        assert_eq!(busy_session(&idle), None);
        assert_eq!(busy_session(&serde_json::json!({})), None);
        let busy = serde_json::json!({"ses_1": {"type": "idle"}, "ses_2": {"type": "busy"}});
        assert_eq!(busy_session(&busy).as_deref(), Some("ses_2"));
    }

    fn utmp_record(kind: i16, line: &str, user: &str) -> Vec<u8> {
        let mut r = vec![0u8; UTMP_RECORD];
        r[0..2].copy_from_slice(&kind.to_ne_bytes());
        r[8..8 + line.len()].copy_from_slice(line.as_bytes());
        r[44..44 + user.len()].copy_from_slice(user.as_bytes());
        r
    }

    #[test]
    fn a_user_session_in_utmp_is_a_login_and_boot_or_dead_entries_are_not() {
        let now = OffsetDateTime::now_utc();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&utmp_record(2, "~", "reboot")).unwrap();
        f.write_all(&utmp_record(8, "pts/0", "")).unwrap();
        assert_eq!(logins(f.path(), now).unwrap(), None);
        f.write_all(&utmp_record(USER_PROCESS, "pts/1", "root"))
            .unwrap();
        assert_eq!(
            logins(f.path(), now).unwrap(),
            Some(Activity::new("login root on pts/1", now))
        );
    }

    /// Records as glibc writes them (util-linux `utmpdump -r` packs `struct utmp`), so the offsets are checked
    /// against the C layout, not against themselves; skipped where utmpdump is missing.
    #[test]
    fn a_utmp_written_by_glibc_reads_as_one_login() {
        let dump = "[7] [12345] [ts/1] [root    ] [pts/1       ] [203.0.113.9         ] [203.0.113.9    ] [2026-12-04T10:00:00,000000+00:00]\n\
                    [8] [00100] [ts/0] [        ] [pts/0       ] [                    ] [0.0.0.0        ] [2026-12-04T09:00:00,000000+00:00]\n";
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("utmp");
        let child = std::process::Command::new("utmpdump")
            .args(["-r", "-o"])
            .arg(&out)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(mut child) = child else {
            eprintln!("utmpdump is not installed: skipped");
            return;
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(dump.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(
            std::fs::metadata(&out).unwrap().len(),
            2 * UTMP_RECORD as u64
        );
        let now = OffsetDateTime::now_utc();
        assert_eq!(
            logins(&out, now).unwrap(),
            Some(Activity::new("login root on pts/1", now))
        );
    }

    #[test]
    fn the_chat_store_counts_from_its_newest_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(chat_store(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join("im.sqlite"), b"x").unwrap();
        let a = chat_store(dir.path()).unwrap().unwrap();
        assert!(OffsetDateTime::now_utc() - a.at < time::Duration::minutes(1));
    }
}
