//! The plugin listener accepts exactly the client certificate Terraform announced and refuses any other.

use std::sync::Arc;
use std::time::Duration;

use cloudcode_tfplugin::tls::{parse_pem_cert, server_config, ServerIdentity};
use cloudcode_tfplugin::transport::incoming;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;

/// A client identity shaped like Terraform's (CA:TRUE, client auth), as PEM and parts.
fn client_identity() -> (String, CertificateDer<'static>, PrivatePkcs8KeyDer<'static>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.self_signed(&key).unwrap();
    (
        cert.pem(),
        cert.der().clone(),
        PrivatePkcs8KeyDer::from(key.serialize_der()),
    )
}

/// Trusts exactly the server certificate printed in the handshake line, as go-plugin does.
#[derive(Debug)]
struct PinServer(CertificateDer<'static>, Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for PinServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        assert_eq!(end_entity.as_ref(), self.0.as_ref());
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.1.signature_verification_algorithms.supported_schemes()
    }
}

/// Connects with `client` credentials and reports whether the server handed a connection to tonic.
async fn server_accepts(
    pinned_pem: &str,
    client_cert: CertificateDer<'static>,
    client_key: PrivatePkcs8KeyDer<'static>,
) -> bool {
    let identity = ServerIdentity::generate().unwrap();
    let config = server_config(&identity, parse_pem_cert(pinned_pem).unwrap()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut conns = incoming(listener, config);

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinServer(identity.cert_der.clone(), provider)))
        .with_client_auth_cert(vec![client_cert], PrivateKeyDer::Pkcs8(client_key))
        .unwrap();
    client.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let client_side = tokio::spawn(async move {
        let name = ServerName::try_from("localhost").unwrap();
        if let Ok(mut tls) = connector.connect(name, tcp).await {
            let _ = tls.write_all(b"ping").await;
            let mut buf = [0u8; 1];
            let _ = tls.read(&mut buf).await;
        }
    });
    let accepted = tokio::time::timeout(Duration::from_secs(3), conns.next())
        .await
        .ok()
        .flatten()
        .is_some_and(|c| c.is_ok());
    client_side.abort();
    accepted
}

#[tokio::test]
async fn the_announced_client_certificate_is_accepted() {
    let (pem, der, key) = client_identity();
    assert!(server_accepts(&pem, der, key).await);
}

#[tokio::test]
async fn a_foreign_client_certificate_is_refused() {
    let (announced_pem, _, _) = client_identity();
    let (_, foreign_der, foreign_key) = client_identity();
    assert!(!server_accepts(&announced_pem, foreign_der, foreign_key).await);
}
