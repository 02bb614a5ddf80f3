//! Scenarios of the SSH transport against a real OpenSSH server on 127.0.0.1 (cloudcode_tests::sshd).
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use cloudcode_ssh::{
    AgentMode, CancellationToken, ConnectOptions, Credentials, Encoding, Endpoint, HostKeyPolicy,
    Remote, Session, SshError,
};
use cloudcode_tests::sshd::{
    ensure_test_user, generate_key, Agent, KeyKind, KeyPair, PreparedSshd, Sshd, SshdConfig,
    TEST_USER,
};

fn endpoint(port: u16, user: &str, credentials: Credentials, host_key: HostKeyPolicy) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port,
        user: user.into(),
        credentials,
        host_key,
    }
}

fn options(target: Endpoint) -> ConnectOptions {
    let mut o = ConnectOptions::new(target);
    o.timeout = Duration::from_secs(30);
    o
}

fn pinned(key: &KeyPair) -> HostKeyPolicy {
    HostKeyPolicy::from_optional(Some(&key.public_line)).unwrap()
}

/// A server accepting `key` for root, and a session to it pinned to its host key.
async fn root_session(kind: KeyKind) -> (tempfile::TempDir, Sshd, Session) {
    let keys = tempfile::tempdir().unwrap();
    let key = generate_key(keys.path(), "id", kind, None).unwrap();
    let sshd = Sshd::start(&SshdConfig::default().authorize("root", &key.public_line)).unwrap();
    let target = endpoint(
        sshd.port(),
        "root",
        Credentials::key_file(&key.private_path),
        pinned(sshd.host_key()),
    );
    let session = Session::connect(options(target)).await.unwrap();
    (keys, sshd, session)
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_over_an_ed25519_key_reports_stdout_stderr_and_exit_code() {
    let (_keys, _sshd, s) = root_session(KeyKind::Ed25519).await;
    let out = s
        .exec("echo out; echo err >&2; exit 7", None)
        .await
        .unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.exit_status, Some(7));
    assert!(!s.uses_sudo());
    assert_eq!(
        s.exec("id -u", None).await.unwrap().stdout_lossy().trim(),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stdin_is_piped_to_the_command_and_closed() {
    let (_keys, _sshd, s) = root_session(KeyKind::Ed25519).await;
    let out = s.run("cat", Some(b"secret-from-stdin")).await.unwrap();
    assert_eq!(out.stdout, b"secret-from-stdin");
    // Large input while the command also writes: no deadlock, every byte arrives.
    let big: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let out = s.run("cat; echo done >&2", Some(&big)).await.unwrap();
    assert_eq!(out.stdout.len(), big.len());
    assert!(out.stdout == big);
    // No stdin given: a command reading stdin sees EOF instead of hanging.
    assert_eq!(
        s.run("wc -c", None).await.unwrap().stdout_lossy().trim(),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_file_is_streamed_as_stdin_and_a_missing_one_is_named() {
    let (keys, _sshd, s) = root_session(KeyKind::Ed25519).await;
    // Larger than the 1 MiB read buffer and not a multiple of it: every byte arrives, in order, then EOF.
    let big: Vec<u8> = (0..(5 * 1024 * 1024 + 333u32))
        .map(|i| (i % 253) as u8)
        .collect();
    let path = keys.path().join("archive.tar");
    std::fs::write(&path, &big).unwrap();
    let out = s
        .exec_file("sha256sum", &path, Encoding::Raw)
        .await
        .unwrap();
    assert!(out.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&big));
    assert_eq!(
        out.stdout_lossy().split_whitespace().next(),
        Some(want.as_str())
    );
    // Some command has run, so the connection knows its round trip (loopback: well under a second).
    let rtt = s.round_trip().expect("a round trip measured");
    assert!(rtt < std::time::Duration::from_secs(1), "{rtt:?}");

    // zstd in transit: what arrives is a zstd frame, smaller than the file, that decodes to the same bytes.
    let sent = keys.path().join("archive.tar.zst");
    let out = s
        .exec_file(
            &format!("cat > '{}'", sent.display()),
            &path,
            Encoding::Zstd(1),
        )
        .await
        .unwrap();
    assert!(out.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let wire = std::fs::read(&sent).unwrap();
    assert_eq!(&wire[..4], &[0x28, 0xb5, 0x2f, 0xfd], "not a zstd frame");
    assert!(wire.len() < big.len() / 4, "{} bytes", wire.len());
    assert!(zstd::decode_all(&wire[..]).unwrap() == big);

    let missing = keys.path().join("no-such.tar");
    let err = s
        .exec_file("cat", &missing, Encoding::Raw)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("no-such.tar") && text.contains("could not read"),
        "{text}"
    );
    // The session still serves commands after the refused one.
    assert_eq!(
        s.run("echo ok", None).await.unwrap().stdout_lossy().trim(),
        "ok"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_command_error_names_host_command_status_and_stderr_tail() {
    let (_keys, sshd, s) = root_session(KeyKind::Ed25519).await;
    let err = s
        .run(
            "for i in $(seq 1 40); do echo line$i >&2; done; exit 3",
            None,
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SshError::Command { .. }), "{msg}");
    assert!(
        msg.contains(&format!("root@127.0.0.1:{}", sshd.port())),
        "{msg}"
    );
    assert!(
        msg.contains("exit status 3") && msg.contains("seq 1 40"),
        "{msg}"
    );
    assert!(
        msg.contains("line40") && msg.contains("line21\n") && !msg.contains("line20\n"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rsa_pem_key_authenticates_with_a_sha2_signature() {
    let (_keys, sshd, s) = root_session(KeyKind::RsaPem).await;
    assert!(s.run("true", None).await.is_ok());
    let log = sshd.log();
    // OpenSSH 9.2 does not accept SHA-1 `ssh-rsa` by default; the log names the algorithm used.
    assert!(log.contains("Accepted publickey for root"), "{log}");
    assert!(
        log.contains("pkalg rsa-sha2-512") || log.contains("pkalg rsa-sha2-256"),
        "{log}"
    );
    assert!(!log.contains("pkalg ssh-rsa "), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ecdsa_key_given_inline_authenticates() {
    let keys = tempfile::tempdir().unwrap();
    let key = generate_key(keys.path(), "id", KeyKind::EcdsaP256, None).unwrap();
    let sshd = Sshd::start(&SshdConfig::default().authorize("root", &key.public_line)).unwrap();
    let target = endpoint(
        sshd.port(),
        "root",
        Credentials::key_inline(key.private_text.clone()),
        pinned(sshd.host_key()),
    );
    let opts = options(target);
    let debug = format!("{opts:?}");
    assert!(
        !debug.contains(key.private_text.lines().nth(1).unwrap()),
        "key text leaked into Debug: {debug}"
    );
    let s = Session::connect(opts).await.unwrap();
    assert_eq!(s.run("echo ok", None).await.unwrap().stdout_lossy(), "ok\n");
}

/// Regression: about one ECDSA key in 256 has a secret scalar with a leading zero byte, which the key decoder
/// refused ("could not decode the key"); such a key, given inline, now logs in to a real sshd.
#[tokio::test(flavor = "multi_thread")]
async fn ecdsa_key_whose_scalar_has_a_leading_zero_byte_authenticates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let private = std::fs::read_to_string(dir.join("ecdsa-p256-short-scalar")).unwrap();
    let public = std::fs::read_to_string(dir.join("ecdsa-p256-short-scalar.pub")).unwrap();
    let sshd = Sshd::start(&SshdConfig::default().authorize("root", public.trim())).unwrap();
    let target = endpoint(
        sshd.port(),
        "root",
        Credentials::key_inline(private),
        pinned(sshd.host_key()),
    );
    let s = Session::connect(options(target)).await.unwrap();
    assert_eq!(s.run("echo ok", None).await.unwrap().stdout_lossy(), "ok\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn passphrase_protected_key_needs_its_passphrase() {
    let keys = tempfile::tempdir().unwrap();
    let key = generate_key(keys.path(), "id", KeyKind::Ed25519, Some("correct horse")).unwrap();
    let sshd = Sshd::start(&SshdConfig::default().authorize("root", &key.public_line)).unwrap();
    let mk = |creds: Credentials| {
        options(endpoint(
            sshd.port(),
            "root",
            creds,
            pinned(sshd.host_key()),
        ))
    };

    let started = Instant::now();
    let err = Session::connect(mk(Credentials::key_file(&key.private_path)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SshError::PrivateKey { .. }) && err.to_string().contains("passphrase"),
        "{err}"
    );
    let err = Session::connect(mk(
        Credentials::key_file(&key.private_path).with_passphrase("Tr0ub4dor&3")
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, SshError::PrivateKey { .. }), "{err}");
    assert!(!err.to_string().contains("Tr0ub4dor"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a bad key must not be retried until the deadline"
    );

    let s = Session::connect(mk(
        Credentials::key_file(&key.private_path).with_passphrase("correct horse")
    ))
    .await
    .unwrap();
    assert!(s.run("true", None).await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_agent_holding_the_key_authenticates() {
    let keys = tempfile::tempdir().unwrap();
    let key = generate_key(keys.path(), "id", KeyKind::Ed25519, None).unwrap();
    let rsa = generate_key(keys.path(), "id_rsa", KeyKind::RsaPem, None).unwrap();
    let sshd = Sshd::start(&SshdConfig::default().authorize("root", &rsa.public_line)).unwrap();
    let agent = Agent::start().unwrap();
    // The agent holds a key the server does not accept, then the one it does (RSA: sha2 via the agent).
    agent.add(&key).unwrap();
    agent.add(&rsa).unwrap();
    let creds = Credentials::agent(AgentMode::Socket(agent.socket().to_path_buf()));
    let s = Session::connect(options(endpoint(
        sshd.port(),
        "root",
        creds,
        pinned(sshd.host_key()),
    )))
    .await
    .unwrap();
    assert_eq!(
        s.run("echo via-agent", None).await.unwrap().stdout_lossy(),
        "via-agent\n"
    );
    assert!(sshd.log().contains("Accepted publickey for root"));
}

#[tokio::test(flavor = "multi_thread")]
async fn jump_host_carries_the_target_connection_with_its_own_pinning() {
    let keys = tempfile::tempdir().unwrap();
    let key = generate_key(keys.path(), "id", KeyKind::Ed25519, None).unwrap();
    let bastion = Sshd::start(
        &SshdConfig::default()
            .authorize("root", &key.public_line)
            .with_tcp_forwarding(),
    )
    .unwrap();
    let target_sshd =
        Sshd::start(&SshdConfig::default().authorize("root", &key.public_line)).unwrap();
    let creds = Credentials::key_file(&key.private_path);
    let mut opts = options(endpoint(
        target_sshd.port(),
        "root",
        creds.clone(),
        HostKeyPolicy::TrustOnFirstUse,
    ));
    opts.jump = Some(endpoint(
        bastion.port(),
        "root",
        creds.clone(),
        pinned(bastion.host_key()),
    ));
    let s = Session::connect(opts).await.unwrap();
    assert_eq!(
        s.run("echo through", None).await.unwrap().stdout_lossy(),
        "through\n"
    );
    assert_eq!(s.host_key().fingerprint, target_sshd.host_key().fingerprint);
    assert_eq!(
        s.jump_host_key().map(|k| k.fingerprint.clone()),
        Some(bastion.host_key().fingerprint.clone())
    );
    assert_eq!(s.stats().connections, 2);
    // The target saw the connection arrive from the bastion's forwarding, the bastion logged the forward.
    assert!(bastion.log().contains("direct-tcpip"), "{}", bastion.log());

    // A wrong pin for the bastion stops before anything reaches the target.
    let other = generate_key(keys.path(), "other", KeyKind::Ed25519, None).unwrap();
    let mut opts = options(endpoint(
        target_sshd.port(),
        "root",
        creds.clone(),
        pinned(target_sshd.host_key()),
    ));
    opts.jump = Some(endpoint(bastion.port(), "root", creds, pinned(&other)));
    let err = Session::connect(opts).await.unwrap_err();
    assert!(matches!(err, SshError::HostKeyMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains(&other.fingerprint)
            && err.to_string().contains(&bastion.host_key().fingerprint)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn trust_on_first_use_returns_the_key_that_pins_later_connections() {
    let keys = tempfile::tempdir().unwrap();
    let key = generate_key(keys.path(), "id", KeyKind::Ed25519, None).unwrap();
    let sshd = Sshd::start(&SshdConfig::default().authorize("root", &key.public_line)).unwrap();
    let creds = Credentials::key_file(&key.private_path);
    let first = Session::connect(options(endpoint(
        sshd.port(),
        "root",
        creds.clone(),
        HostKeyPolicy::TrustOnFirstUse,
    )))
    .await
    .unwrap();
    let observed = first.host_key().clone();
    let expected_line: Vec<&str> = sshd
        .host_key()
        .public_line
        .split_whitespace()
        .take(2)
        .collect();
    assert_eq!(observed.public_key, expected_line.join(" "));
    assert_eq!(observed.fingerprint, sshd.host_key().fingerprint);
    assert_eq!(observed.algorithm, "ssh-ed25519");

    for pin in [observed.public_key.as_str(), observed.fingerprint.as_str()] {
        let policy = HostKeyPolicy::from_optional(Some(pin)).unwrap();
        let s = Session::connect(options(endpoint(
            sshd.port(),
            "root",
            creds.clone(),
            policy,
        )))
        .await
        .unwrap();
        assert!(s.run("true", None).await.is_ok(), "pin {pin}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn host_key_mismatch_stops_with_both_fingerprints_before_any_authentication() {
    let keys = tempfile::tempdir().unwrap();
    let key = generate_key(keys.path(), "id", KeyKind::Ed25519, None).unwrap();
    let old_host = generate_key(keys.path(), "old_host_key", KeyKind::Ed25519, None).unwrap();
    let sshd = Sshd::start(&SshdConfig::default().authorize("root", &key.public_line)).unwrap();
    let started = Instant::now();
    let mut opts = options(endpoint(
        sshd.port(),
        "root",
        Credentials::key_file(&key.private_path),
        pinned(&old_host),
    ));
    opts.timeout = Duration::from_secs(60);
    let err = Session::connect(opts).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SshError::HostKeyMismatch { .. }), "{msg}");
    assert!(
        msg.contains(&old_host.fingerprint),
        "expected fingerprint missing: {msg}"
    );
    assert!(
        msg.contains(&sshd.host_key().fingerprint),
        "presented fingerprint missing: {msg}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a mismatch must not be retried"
    );
    // The server saw one connection and no authentication request at all.
    std::thread::sleep(Duration::from_millis(300));
    let log = sshd.log();
    assert_eq!(log.matches("Connection from 127.0.0.1").count(), 1, "{log}");
    assert!(
        !log.contains("userauth"),
        "authentication was attempted: {log}"
    );
    assert!(!log.contains("Accepted publickey"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_retries_while_sshd_is_not_listening_yet() {
    let keys = tempfile::tempdir().unwrap();
    let key = generate_key(keys.path(), "id", KeyKind::Ed25519, None).unwrap();
    let prepared =
        PreparedSshd::new(&SshdConfig::default().authorize("root", &key.public_line)).unwrap();
    let target = endpoint(
        prepared.port(),
        "root",
        Credentials::key_file(&key.private_path),
        pinned(prepared.host_key()),
    );
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        prepared.start()
    });
    let s = Session::connect(options(target)).await.unwrap();
    let _sshd = starter.join().unwrap().unwrap();
    assert!(s.run("true", None).await.is_ok());
    assert!(s.stats().connect_attempts > 1, "{:?}", s.stats());
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_retries_rejected_keys_until_cloud_init_installs_the_key() {
    let keys = tempfile::tempdir().unwrap();
    let key = generate_key(keys.path(), "id", KeyKind::Ed25519, None).unwrap();
    let sshd = Sshd::start(&SshdConfig::default()).unwrap();
    let authorized = sshd.dir().join("authorized_keys").join("root");
    let line = key.public_line.clone();
    let installer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        std::fs::write(&authorized, format!("{line}\n")).unwrap();
    });
    let target = endpoint(
        sshd.port(),
        "root",
        Credentials::key_file(&key.private_path),
        pinned(sshd.host_key()),
    );
    let s = Session::connect(options(target)).await.unwrap();
    installer.join().unwrap();
    assert!(s.stats().connect_attempts > 1, "{:?}", s.stats());
    assert!(s.run("true", None).await.is_ok());
}

/// Regression: a key the host never accepts used to end in "attempt timed out after 0ns" (the deadline's last,
/// empty attempt) inside a generic connect timeout; callers could not tell a refused key from a host down.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_the_host_never_accepts_is_reported_as_refused_with_the_hosts_answer() {
    let keys = tempfile::tempdir().unwrap();
    let key = generate_key(keys.path(), "id", KeyKind::Ed25519, None).unwrap();
    let sshd = Sshd::start(&SshdConfig::default()).unwrap();
    let mut opts = options(endpoint(
        sshd.port(),
        "root",
        Credentials::key_file(&key.private_path),
        pinned(sshd.host_key()),
    ));
    opts.timeout = Duration::from_secs(2);
    let err = Session::connect(opts).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, SshError::AuthRejected { attempts, .. } if attempts > 1),
        "{msg}"
    );
    assert!(!msg.contains("timed out after 0ns"), "{msg}");
    assert!(msg.contains("refused the SSH credentials"), "{msg}");
}

/// Options for a loopback port where nothing listens (connections are refused).
fn nothing_listening(keys: &Path) -> (u16, ConnectOptions) {
    let key = generate_key(keys, "id", KeyKind::Ed25519, None).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let creds = Credentials::key_file(&key.private_path);
    (
        port,
        options(endpoint(
            port,
            "root",
            creds,
            HostKeyPolicy::TrustOnFirstUse,
        )),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_gives_up_at_the_deadline_with_a_clear_error() {
    let keys = tempfile::tempdir().unwrap();
    let (port, mut opts) = nothing_listening(keys.path());
    opts.timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = Session::connect(opts).await.unwrap_err();
    let elapsed = started.elapsed();
    let msg = err.to_string();
    assert!(
        matches!(err, SshError::ConnectTimeout { attempts, .. } if attempts > 1),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("root@127.0.0.1:{port}")) && msg.to_lowercase().contains("refused"),
        "{msg}"
    );
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancellation_stops_the_connect_wait() {
    let keys = tempfile::tempdir().unwrap();
    let (_, mut opts) = nothing_listening(keys.path());
    opts.timeout = Duration::from_secs(600);
    let cancel = CancellationToken::new();
    opts.cancel = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let err = Session::connect(opts).await.unwrap_err();
    assert!(matches!(err, SshError::Cancelled { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

fn temp_leftovers(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&format!(".{name}.cloudcode-tmp.")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn atomic_upload_replaces_content_and_mode_and_reads_back() {
    let (_keys, sshd, s) = root_session(KeyKind::Ed25519).await;
    let dir = sshd.dir().join("deploy");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("compose.yaml");
    let p = path.to_str().unwrap();
    assert_eq!(s.read_file(p).await.unwrap(), None);
    s.upload_atomic(p, b"first\n", 0o640).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"first\n");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o640
    );
    s.upload_atomic(p, b"second\n", 0o600).await.unwrap();
    assert_eq!(
        s.read_file(p).await.unwrap().as_deref(),
        Some(&b"second\n"[..])
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    s.upload_atomic(p, &big, 0o644).await.unwrap();
    assert!(s.read_file(p).await.unwrap().as_deref() == Some(&big[..]));
    assert!(temp_leftovers(&dir, "compose.yaml").is_empty());
    let err = s
        .upload_atomic("relative/path", b"x", 0o644)
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::InvalidRequest { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_killed_mid_upload_leaves_the_old_file_and_the_next_upload_cleans_up() {
    let keys = tempfile::tempdir().unwrap();
    let key = generate_key(keys.path(), "id", KeyKind::Ed25519, None).unwrap();
    let sshd = Sshd::start(&SshdConfig::default().authorize("root", &key.public_line)).unwrap();
    let target = endpoint(
        sshd.port(),
        "root",
        Credentials::key_file(&key.private_path),
        pinned(sshd.host_key()),
    );
    let dir = sshd.dir().join("deploy");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("image.tar");
    std::fs::write(&path, b"old content").unwrap();
    let p = path.to_str().unwrap().to_string();

    let s = std::sync::Arc::new(Session::connect(options(target.clone())).await.unwrap());
    let big = vec![0x5au8; 512 * 1024 * 1024];
    let upload = {
        let p = p.clone();
        let s = s.clone();
        tokio::spawn(async move { s.upload_atomic(&p, &big, 0o644).await })
    };
    // Kill the server side of the connection once the temp file has started to fill.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let growing = temp_leftovers(&dir, "image.tar").iter().any(|t| {
            std::fs::metadata(dir.join(t))
                .map(|m| m.len() > 4 * 1024 * 1024)
                .unwrap_or(false)
        });
        if growing {
            break;
        }
        assert!(
            !upload.is_finished(),
            "upload finished before it could be interrupted"
        );
        assert!(Instant::now() < deadline, "temp file never appeared");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let killed_at = Instant::now();
    assert!(sshd.kill_connections() > 0);
    let result = upload.await.unwrap();
    assert!(s.is_closed());
    // Noticed from the dropped connection, not from a request timeout.
    assert!(
        killed_at.elapsed() < Duration::from_secs(20),
        "took {:?}",
        killed_at.elapsed()
    );
    assert!(result.is_err(), "upload survived a killed connection");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"old content",
        "target must keep its old content"
    );
    let left = temp_leftovers(&dir, "image.tar");
    assert_eq!(
        left.len(),
        1,
        "the interrupted upload leaves its temp file: {left:?}"
    );

    let s = Session::connect(options(target)).await.unwrap();
    s.upload_atomic(&p, b"new content", 0o644).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new content");
    assert!(
        temp_leftovers(&dir, "image.tar").is_empty(),
        "stale temp file not cleaned"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_connection_serves_every_command_and_upload_of_an_operation() {
    let (_keys, sshd, s) = root_session(KeyKind::Ed25519).await;
    let dir = sshd.dir().join("deploy");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..20 {
        assert_eq!(
            s.run(&format!("echo {i}"), None)
                .await
                .unwrap()
                .stdout_lossy(),
            format!("{i}\n")
        );
    }
    for i in 0..3 {
        let p = dir.join(format!("f{i}"));
        s.upload_atomic(p.to_str().unwrap(), b"x", 0o644)
            .await
            .unwrap();
        assert!(s.read_file(p.to_str().unwrap()).await.unwrap().is_some());
    }
    let stats = s.stats();
    assert_eq!(
        (stats.connections, stats.connect_attempts),
        (1, 1),
        "{stats:?}"
    );
    assert_eq!(
        (stats.commands, stats.uploads, stats.sftp_channels),
        (20, 3, 1),
        "{stats:?}"
    );
    assert_eq!(
        sshd.log().matches("Accepted publickey").count(),
        1,
        "{}",
        sshd.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn non_root_user_runs_commands_and_uploads_through_sudo() {
    ensure_test_user().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = generate_key(keys.path(), "id", KeyKind::Ed25519, None).unwrap();
    let sshd = Sshd::start(&SshdConfig::default().authorize(TEST_USER, &key.public_line)).unwrap();
    let target = endpoint(
        sshd.port(),
        TEST_USER,
        Credentials::key_file(&key.private_path),
        pinned(sshd.host_key()),
    );
    let s = Session::connect(options(target)).await.unwrap();
    assert!(s.uses_sudo());
    assert_eq!(
        s.run("id -u", None).await.unwrap().stdout_lossy().trim(),
        "0"
    );
    assert_eq!(
        s.run("cat", Some(b"via sudo stdin")).await.unwrap().stdout,
        b"via sudo stdin"
    );

    // A root-only directory: only sudo can write there.
    let dir = sshd.dir().join("secure");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = dir.join("users.yml");
    let p = path.to_str().unwrap();
    assert_eq!(s.read_file(p).await.unwrap(), None);
    std::fs::write(dir.join(".users.yml.cloudcode-tmp.stale"), b"partial").unwrap();
    s.upload_atomic(p, b"users: {}\n", 0o640).await.unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!((meta.uid(), meta.permissions().mode() & 0o7777), (0, 0o640));
    assert_eq!(
        s.read_file(p).await.unwrap().as_deref(),
        Some(&b"users: {}\n"[..])
    );
    assert!(temp_leftovers(&dir, "users.yml").is_empty());
    let home = std::path::PathBuf::from(format!("/home/{TEST_USER}/.cloudcode-stage"));
    let staged: Vec<_> = std::fs::read_dir(&home).unwrap().collect();
    assert!(staged.is_empty(), "staged copy left in {home:?}");
}
