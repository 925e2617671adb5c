//! Signed machine requests in the wire format of the machine protocol, for the benchmarks of the
//! decision with its signature check.
//!
//! The signed bytes are the UTF-8 of `METHOD:path:timestamp:nonce:bodyHash`, where `bodyHash` is
//! the lower-case hex SHA-256 of the body, and `X-Signature` carries the 64-byte Ed25519
//! signature in padded standard base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// A signed request as the server receives it: the parts of the signed bytes and the
/// `X-Signature` header.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    /// The HTTP method, such as `POST`.
    pub method: &'static str,
    /// The raw request path without the query string.
    pub path: &'static str,
    /// `X-Timestamp`, in Unix seconds, as sent.
    pub timestamp: String,
    /// `X-Nonce`, as sent.
    pub nonce: String,
    /// The exact body bytes.
    pub body: Vec<u8>,
    /// `X-Signature`: the signature in padded standard base64.
    pub signature: String,
}

/// A machine key pair and one request it signed, built from fixed bytes.
pub struct SignedFixture {
    /// The machine's public key.
    pub verifying_key: VerifyingKey,
    /// A request the machine signed.
    pub request: SignedRequest,
    /// The exact signed bytes of `request`.
    pub signed_bytes: Vec<u8>,
    /// The decoded signature of `request`.
    pub signature: Signature,
}

/// Builds a machine key from a fixed seed and signs a `POST /v1/secrets/poll` request with a
/// small JSON body, as an SDK polling for changes sends it.
pub fn signed_fixture(timestamp: i64) -> SignedFixture {
    let signing_key = SigningKey::from_bytes(&[7_u8; 32]);
    let body = br#"{"watch":["sk_AbCdEfGhIj01","sk_KlMnOpQrSt23"]}"#.to_vec();
    let nonce = STANDARD.encode([0x5a_u8; 16]);
    let timestamp = timestamp.to_string();
    let mut signed_bytes = Vec::new();
    write_signed_bytes(
        &mut signed_bytes,
        "POST",
        "/v1/secrets/poll",
        &timestamp,
        &nonce,
        &body,
    );
    let signature = signing_key.sign(&signed_bytes);
    SignedFixture {
        verifying_key: signing_key.verifying_key(),
        request: SignedRequest {
            method: "POST",
            path: "/v1/secrets/poll",
            timestamp,
            nonce,
            body,
            signature: STANDARD.encode(signature.to_bytes()),
        },
        signed_bytes,
        signature,
    }
}

/// Writes `METHOD:path:timestamp:nonce:bodyHash` into `out`, replacing what it held.
pub fn write_signed_bytes(
    out: &mut Vec<u8>,
    method: &str,
    path: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.clear();
    for part in [method, path, timestamp, nonce] {
        out.extend_from_slice(part.as_bytes());
        out.push(b':');
    }
    for byte in Sha256::digest(body) {
        out.push(HEX[usize::from(byte >> 4)]);
        out.push(HEX[usize::from(byte & 0x0f)]);
    }
}

/// Why [`verify_request`] rejected a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureRejected {
    /// `X-Signature` is not 64 bytes in padded standard base64.
    Malformed,
    /// The signature does not verify under `verify_strict`.
    Invalid,
}

/// Checks the signature of `request` the way step 8 does, without the timestamp and nonce
/// checks: hash the body, build the signed bytes, decode the base64 signature and run
/// `verify_strict`. `scratch` is reused between calls so that the measurement shows no
/// allocation.
///
/// # Errors
///
/// Returns [`SignatureRejected`] when the signature is malformed or does not verify.
// TODO: switch to the core's signed-request verification once it is merged.
pub fn verify_request(
    key: &VerifyingKey,
    request: &SignedRequest,
    scratch: &mut Vec<u8>,
) -> Result<(), SignatureRejected> {
    // 64 bytes need 88 characters of base64; the decoder wants room for its estimate of 66.
    let mut decoded = [0_u8; 66];
    let length = STANDARD
        .decode_slice(request.signature.as_bytes(), &mut decoded)
        .map_err(|_| SignatureRejected::Malformed)?;
    let bytes: [u8; 64] = decoded[..length]
        .try_into()
        .map_err(|_| SignatureRejected::Malformed)?;
    write_signed_bytes(
        scratch,
        request.method,
        request.path,
        &request.timestamp,
        &request.nonce,
        &request.body,
    );
    key.verify_strict(scratch, &Signature::from_bytes(&bytes))
        .map_err(|_| SignatureRejected::Invalid)
}
