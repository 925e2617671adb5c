//! Signed machine requests in the wire format of the machine protocol.
//!
//! The signed bytes are the UTF-8 of `METHOD:path:timestamp:nonce:bodyHash` (built by
//! [`guardrail_core::request::signed_payload`]), and `X-Signature` carries the 64-byte Ed25519
//! signature in padded standard base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey};
use guardrail_core::ids::MachineId;
use guardrail_core::request::{Nonce, RawRequest, Timestamp, body_hash, signed_payload};

use crate::FixtureError;

/// A request that a machine signed, with its headers as the server receives them.
pub struct SignedFixture {
    /// The machine's key pair, built from a fixed seed.
    pub signing_key: SigningKey,
    /// `X-Machine-Id`.
    pub machine_id: String,
    /// `X-Timestamp`.
    pub timestamp: String,
    /// `X-Nonce`.
    pub nonce: String,
    /// `X-Signature`: the signature in padded standard base64.
    pub signature_header: String,
    /// The exact body bytes.
    pub body: Vec<u8>,
    /// The exact signed bytes.
    pub payload: Vec<u8>,
    /// The decoded signature.
    pub signature: Signature,
}

/// The method of the signed request.
pub const METHOD: &str = "POST";
/// The path of the signed request: an SDK polling for changed secrets.
pub const PATH: &str = "/v1/secrets/poll";

impl SignedFixture {
    /// Signs a `POST /v1/secrets/poll` request with a small JSON body at `timestamp` (Unix
    /// seconds), as machine `machine` sends it.
    ///
    /// # Errors
    ///
    /// Returns an error when `timestamp` is negative.
    pub fn new(machine: MachineId, timestamp: i64) -> Result<Self, FixtureError> {
        let signing_key = SigningKey::from_bytes(&[7_u8; 32]);
        let body = br#"{"watch":["sk_AbCdEfGhIj01","sk_KlMnOpQrSt23"]}"#.to_vec();
        let nonce_text = STANDARD.encode([0x5a_u8; 16]);
        let timestamp =
            Timestamp::from_unix_seconds(timestamp).ok_or("the timestamp is negative")?;
        let nonce = Nonce::parse(nonce_text.as_bytes())?;
        let payload = signed_payload(METHOD, PATH, timestamp, &nonce, &body_hash(&body));
        let signature = signing_key.sign(&payload);
        Ok(Self {
            signing_key,
            machine_id: machine.to_string(),
            timestamp: timestamp.to_string(),
            nonce: nonce_text,
            signature_header: STANDARD.encode(signature.to_bytes()),
            body,
            payload,
            signature,
        })
    }

    /// Returns the request as it arrived, with every header present.
    pub fn raw(&self) -> RawRequest<'_> {
        RawRequest {
            method: METHOD,
            path: PATH,
            machine_id: Some(self.machine_id.as_bytes()),
            timestamp: Some(self.timestamp.as_bytes()),
            nonce: Some(self.nonce.as_bytes()),
            signature: Some(self.signature_header.as_bytes()),
            body: &self.body,
        }
    }
}
