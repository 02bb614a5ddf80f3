//! A software WebAuthn authenticator (ES256, "none" attestation) that answers the portal's creation and
//! request options as a browser with a platform authenticator would, reporting `credProps.rk` for a passkey.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ciborium::Value;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

/// One credential held by the authenticator: created by [`SoftAuthenticator::create`].
pub struct SoftAuthenticator {
    key: SigningKey,
    credential_id: Vec<u8>,
    user_handle: Option<String>,
    /// The signature counter, carried on between assertions (a lower one is refused as a cloned key).
    pub counter: u32,
    /// Report `credProps.rk = true` (a discoverable credential, i.e. a passkey).
    pub resident: bool,
    /// The origin the client reports in clientDataJSON (`https://auth.<domain>[:port]`).
    pub origin: String,
}

impl SoftAuthenticator {
    pub fn new(origin: &str, resident: bool) -> Self {
        let mut id = [0u8; 32];
        rand::fill(&mut id);
        let mut secret = [0u8; 32];
        rand::fill(&mut secret);
        Self {
            key: SigningKey::from_slice(&secret).expect("a random P-256 scalar"),
            credential_id: id.to_vec(),
            user_handle: None,
            counter: 0,
            resident,
            origin: origin.to_string(),
        }
    }

    pub fn credential_id(&self) -> String {
        B64.encode(&self.credential_id)
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false
        }))
        .unwrap()
    }

    fn auth_data(&self, rp_id: &str, flags: u8, attested: Option<&[u8]>) -> Vec<u8> {
        let mut out = Sha256::digest(rp_id.as_bytes()).to_vec();
        out.push(flags);
        out.extend_from_slice(&self.counter.to_be_bytes());
        if let Some(a) = attested {
            out.extend_from_slice(a);
        }
        out
    }

    /// The browser's answer to `navigator.credentials.create` for the portal's `publicKey` options.
    pub fn create(&mut self, options: &Json) -> Json {
        let rp_id = options["rp"]["id"].as_str().expect("rp.id");
        let challenge = options["challenge"].as_str().expect("challenge");
        self.user_handle = options["user"]["id"].as_str().map(str::to_string);
        let point = self.key.verifying_key().to_encoded_point(false);
        let cose = Value::Map(vec![
            (Value::from(1), Value::from(2)),  // kty: EC2
            (Value::from(3), Value::from(-7)), // alg: ES256
            (Value::from(-1), Value::from(1)), // crv: P-256
            (Value::from(-2), Value::Bytes(point.x().unwrap().to_vec())),
            (Value::from(-3), Value::Bytes(point.y().unwrap().to_vec())),
        ]);
        let mut attested = vec![0u8; 16]; // AAGUID
        attested.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
        attested.extend_from_slice(&self.credential_id);
        ciborium::into_writer(&cose, &mut attested).unwrap();
        // UP | UV | AT
        let auth_data = self.auth_data(rp_id, 0x01 | 0x04 | 0x40, Some(&attested));
        let attestation = Value::Map(vec![
            (Value::from("fmt"), Value::from("none")),
            (Value::from("attStmt"), Value::Map(vec![])),
            (Value::from("authData"), Value::Bytes(auth_data)),
        ]);
        let mut attestation_object = Vec::new();
        ciborium::into_writer(&attestation, &mut attestation_object).unwrap();
        let extensions = if self.resident {
            json!({"credProps": {"rk": true}})
        } else {
            json!({})
        };
        json!({
            "id": self.credential_id(), "rawId": self.credential_id(), "type": "public-key",
            "authenticatorAttachment": "platform", "clientExtensionResults": extensions,
            "response": {
                "clientDataJSON": B64.encode(self.client_data("webauthn.create", challenge)),
                "attestationObject": B64.encode(attestation_object),
                "transports": ["internal"]
            }
        })
    }

    /// The browser's answer to `navigator.credentials.get` for the portal's `publicKey` options; the counter
    /// goes up by one first.
    pub fn get(&mut self, options: &Json) -> Json {
        let rp_id = options["rpId"].as_str().expect("rpId");
        let challenge = options["challenge"].as_str().expect("challenge");
        self.counter += 1;
        let auth_data = self.auth_data(rp_id, 0x01 | 0x04, None);
        let client_data = self.client_data("webauthn.get", challenge);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature: DerSignature = self.key.sign(&signed);
        json!({
            "id": self.credential_id(), "rawId": self.credential_id(), "type": "public-key",
            "authenticatorAttachment": "platform", "clientExtensionResults": {},
            "response": {
                "clientDataJSON": B64.encode(client_data),
                "authenticatorData": B64.encode(auth_data),
                "signature": B64.encode(signature.as_bytes()),
                "userHandle": self.user_handle.clone().unwrap_or_default()
            }
        })
    }
}
