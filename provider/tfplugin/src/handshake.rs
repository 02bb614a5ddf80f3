//! The go-plugin handshake: magic cookie check, protocol version negotiation, binding a port in the range
//! Terraform allows, and the single line printed on stdout that tells Terraform where to connect.
//!
//! This is the only place in the provider that writes to stdout.

use std::net::{Ipv4Addr, SocketAddr};

use base64::Engine as _;
use tokio::net::TcpListener;

/// Environment variable Terraform (and OpenTofu) set to prove the process was launched as a plugin.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// The value of [`MAGIC_COOKIE_KEY`] shared by every Terraform provider.
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// go-plugin's core protocol version (the first field of the handshake line).
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// The only application protocol this provider speaks: Terraform plugin protocol 6.
pub const APP_PROTOCOL_VERSION: u32 = 6;

/// What went wrong before serving; each message is a sentence meant for a human.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error(
        "This binary is a plugin for Terraform and OpenTofu (provider \"{0}\"); it is not meant to be run by hand.\n\
         Declare it in a `required_providers` block and run `terraform init` / `tofu init` instead."
    )]
    NotLaunchedAsPlugin(String),
    #[error(
        "Terraform offered plugin protocol versions {offered:?}, but this provider speaks only version {APP_PROTOCOL_VERSION} \
         (Terraform >= 1.0 or OpenTofu). Upgrade Terraform."
    )]
    NoCommonProtocol { offered: Vec<u32> },
    #[error("invalid {name}={value:?}: {reason}")]
    BadEnv {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error(
        "Terraform did not send a client certificate (PLUGIN_CLIENT_CERT); this provider only serves over mutual TLS. \
         Terraform >= 1.0 and OpenTofu always send one: was the provider started by something else?"
    )]
    NoClientCert,
    #[error("no free TCP port on 127.0.0.1 between {min} and {max}: {last_error}")]
    NoFreePort {
        min: u16,
        max: u16,
        last_error: String,
    },
}

/// The handshake parameters Terraform passes through the environment.
#[derive(Debug, Clone)]
pub struct HandshakeEnv {
    pub offered_versions: Vec<u32>,
    pub min_port: u16,
    pub max_port: u16,
    /// PEM of the certificate Terraform will present; the TLS layer pins exactly this certificate.
    pub client_cert_pem: String,
}

impl HandshakeEnv {
    /// Reads and checks the handshake environment through `get` (normally `std::env::var`).
    pub fn from_env(
        provider_name: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, HandshakeError> {
        if get(MAGIC_COOKIE_KEY).as_deref() != Some(MAGIC_COOKIE_VALUE) {
            return Err(HandshakeError::NotLaunchedAsPlugin(
                provider_name.to_string(),
            ));
        }
        let offered_versions = match get("PLUGIN_PROTOCOL_VERSIONS") {
            None => vec![APP_PROTOCOL_VERSION],
            Some(raw) => parse_versions(&raw)?,
        };
        if !offered_versions.contains(&APP_PROTOCOL_VERSION) {
            return Err(HandshakeError::NoCommonProtocol {
                offered: offered_versions,
            });
        }
        let min_port = parse_port(&get, "PLUGIN_MIN_PORT", 10000)?;
        let max_port = parse_port(&get, "PLUGIN_MAX_PORT", 25000)?;
        if min_port > max_port {
            return Err(HandshakeError::BadEnv {
                name: "PLUGIN_MIN_PORT",
                value: min_port.to_string(),
                reason: format!("greater than PLUGIN_MAX_PORT ({max_port})"),
            });
        }
        let client_cert_pem = get("PLUGIN_CLIENT_CERT")
            .filter(|s| !s.trim().is_empty())
            .ok_or(HandshakeError::NoClientCert)?;
        Ok(Self {
            offered_versions,
            min_port,
            max_port,
            client_cert_pem,
        })
    }

    /// Binds the first free port of the allowed range on the loopback interface.
    pub async fn bind(&self) -> Result<TcpListener, HandshakeError> {
        let mut last_error = String::from("range is empty");
        for port in self.min_port..=self.max_port {
            match TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await {
                Ok(listener) => return Ok(listener),
                Err(e) => last_error = e.to_string(),
            }
        }
        Err(HandshakeError::NoFreePort {
            min: self.min_port,
            max: self.max_port,
            last_error,
        })
    }
}

fn parse_versions(raw: &str) -> Result<Vec<u32>, HandshakeError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u32>().map_err(|e| HandshakeError::BadEnv {
                name: "PLUGIN_PROTOCOL_VERSIONS",
                value: raw.to_string(),
                reason: e.to_string(),
            })
        })
        .collect()
}

fn parse_port(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u16,
) -> Result<u16, HandshakeError> {
    match get(name) {
        None => Ok(default),
        Some(v) => v.trim().parse::<u16>().map_err(|e| HandshakeError::BadEnv {
            name,
            value: v.clone(),
            reason: e.to_string(),
        }),
    }
}

/// The line go-plugin expects on stdout:
/// `CORE-VERSION|APP-VERSION|NETWORK|ADDRESS|PROTOCOL|SERVER-CERT` where the certificate is the server's DER in
/// unpadded standard base64.
pub fn handshake_line(addr: SocketAddr, server_cert_der: &[u8]) -> String {
    let cert = base64::engine::general_purpose::STANDARD_NO_PAD.encode(server_cert_der);
    format!("{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|tcp|{addr}|grpc|{cert}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn run_by_hand_gets_a_human_sentence() {
        let err = HandshakeEnv::from_env("cloudcode", env(&[])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("plugin for Terraform"), "{msg}");
        assert!(msg.contains("not meant to be run by hand"), "{msg}");
    }

    #[test]
    fn wrong_cookie_is_refused() {
        let err =
            HandshakeEnv::from_env("cloudcode", env(&[(MAGIC_COOKIE_KEY, "nope")])).unwrap_err();
        assert!(matches!(err, HandshakeError::NotLaunchedAsPlugin(_)));
    }

    #[test]
    fn protocol_5_only_is_refused_with_the_version_needed() {
        let err = HandshakeEnv::from_env(
            "cloudcode",
            env(&[
                (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
                ("PLUGIN_PROTOCOL_VERSIONS", "5"),
                ("PLUGIN_CLIENT_CERT", "x"),
            ]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("speaks only version 6"), "{err}");
    }

    #[test]
    fn negotiates_6_and_reads_port_range() {
        let hs = HandshakeEnv::from_env(
            "cloudcode",
            env(&[
                (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
                ("PLUGIN_PROTOCOL_VERSIONS", "5,6"),
                ("PLUGIN_MIN_PORT", "12000"),
                ("PLUGIN_MAX_PORT", "12010"),
                ("PLUGIN_CLIENT_CERT", "-----BEGIN CERTIFICATE-----"),
            ]),
        )
        .unwrap();
        assert_eq!(hs.offered_versions, vec![5, 6]);
        assert_eq!((hs.min_port, hs.max_port), (12000, 12010));
    }

    #[test]
    fn missing_client_cert_is_refused() {
        let err =
            HandshakeEnv::from_env("cloudcode", env(&[(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)]))
                .unwrap_err();
        assert!(matches!(err, HandshakeError::NoClientCert));
    }

    #[tokio::test]
    async fn binds_inside_the_range_even_when_the_first_port_is_taken() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = taken.local_addr().unwrap().port();
        let hs = HandshakeEnv {
            offered_versions: vec![6],
            min_port: port,
            max_port: port.saturating_add(20),
            client_cert_pem: String::new(),
        };
        let l = hs.bind().await.unwrap();
        let got = l.local_addr().unwrap().port();
        assert!(got > port && got <= port + 20, "{got}");
    }

    #[test]
    fn handshake_line_has_six_fields_and_unpadded_cert() {
        let line = handshake_line("127.0.0.1:1234".parse().unwrap(), &[1, 2, 3, 4]);
        assert_eq!(line, "1|6|tcp|127.0.0.1:1234|grpc|AQIDBA");
    }
}
