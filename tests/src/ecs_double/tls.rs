//! HTTPS for the double: a throwaway CA and a certificate for 127.0.0.1, localhost and the OSS endpoint with its
//! buckets (`*.oss.double.test`, reached through the double's CONNECT proxy), as the official alicloud
//! provider needs (its SDKs send HTTPS, and some calls force it); its Go process trusts the CA through
//! `SSL_CERT_FILE`.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The CA (PEM, for the client to trust) and the server's TLS configuration.
pub struct TestTls {
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

pub fn test_tls() -> Result<TestTls, String> {
    let err = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "cloudcode test Alibaba Cloud API CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let host = super::oss::OSS_ENDPOINT_HOST;
    let mut leaf = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        host.to_string(),
        format!("*.{host}"),
    ])
    .map_err(err)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(err)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .map_err(|e| e.to_string())?;
    Ok(TestTls {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
    })
}

/// Serves `app` over TLS on `listener` until `stop` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    server: Arc<rustls::ServerConfig>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        }
    }
}
