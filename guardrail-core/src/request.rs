//! Signed machine requests: payload, signature, timestamp and nonce (step 8).
//!
//! A machine signs the UTF-8 bytes of `METHOD:path:timestamp:nonce:bodyHash` with its Ed25519
//! key and sends the signature with three more headers:
//!
//! | header | format accepted here |
//! | --- | --- |
//! | `X-Machine-Id` | a hyphenated UUID, either case; replay protection uses its lower-case form |
//! | `X-Timestamp` | decimal Unix seconds: ASCII digits only, no sign, no leading zero, at most 19 digits |
//! | `X-Nonce` | 1 to 128 bytes of `A-Z a-z 0-9 + / = - _` (base64, URL-safe base64 or hex) |
//! | `X-Signature` | 64 bytes in standard base64 with padding (exactly 88 characters) |
//!
//! `path` is the raw request path without its query string, and `bodyHash` the lower-case hex
//! SHA-256 of the exact body bytes (of the empty string when there is no body). The machine id is
//! not part of the signed bytes.
//!
//! [`SignedRequest::parse`] checks every header on its own and keeps each result, so that the
//! evaluator can report a bad machine id at step 3 and any other bad header at step 8, after the
//! guardrails ran. [`SignedRequest::verify`] is step 8 itself.
//!
//! # Timestamps
//!
//! A negative timestamp, a `+` sign and leading zeros are rejected as malformed, so every accepted
//! timestamp has one spelling, and that spelling is what the signature covers. A value with more
//! than 19 digits is rejected before it is converted, and the conversion uses checked arithmetic,
//! so no input overflows. The freshness check computes `|now - timestamp|` in `i128`, where no
//! pair of `i64` values can overflow, and accepts a difference equal to the allowed skew.
//!
//! # Order inside step 8
//!
//! Header formats are checked first, then the signature (`verify_strict`), then the timestamp's
//! freshness, and the nonce last. Checking the signature before freshness means a stale timestamp
//! is reported only for requests the machine's key really signed, which points at the client's
//! clock. The nonce store is called only after both passed, so a client without the key cannot fill it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64_STANDARD;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::ids::MachineId;

/// Header carrying the machine id.
pub const MACHINE_ID_HEADER: &str = "X-Machine-Id";
/// Header carrying the Unix timestamp in seconds.
pub const TIMESTAMP_HEADER: &str = "X-Timestamp";
/// Header carrying the nonce.
pub const NONCE_HEADER: &str = "X-Nonce";
/// Header carrying the base64 signature.
pub const SIGNATURE_HEADER: &str = "X-Signature";

/// Maximum length of a nonce in bytes. Clients send 24 characters (16 random bytes in padded
/// base64) or 32 (hex); the bound keeps the replay store's rows small.
pub const MAX_NONCE_LEN: usize = 128;

/// Maximum number of digits in a timestamp: `i64::MAX` has 19.
const MAX_TIMESTAMP_DIGITS: usize = 19;

/// Length of a 64-byte signature in padded standard base64.
const SIGNATURE_BASE64_LEN: usize = 88;

/// How many characters of a rejected header value an error message repeats.
const ECHO_LIMIT: usize = 40;

/// Default allowed difference between a request's timestamp and the transport clock.
pub const DEFAULT_MAX_SKEW_SECONDS: u32 = 60;

/// Largest allowed skew. Nonces are kept for the skew after their timestamp, so the skew also
/// sizes the replay store.
pub const MAX_SKEW_SECONDS: u32 = 3_600;

/// Whether a nonce was new or had been seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceOutcome {
    /// The nonce was recorded now.
    Recorded,
    /// The nonce was already recorded for this machine: the request is a replay.
    Replayed,
}

/// The nonce store could not decide, or is full of unexpired nonces. The request fails closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("nonce store unavailable: {reason}")]
pub struct NonceStoreError {
    reason: String,
}

impl NonceStoreError {
    /// Makes an error with a reason for the logs; the client never sees it.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// Replay protection, implemented by the store.
///
/// The evaluator calls it only after the signature verified, so an attacker without the key
/// cannot fill it.
pub trait NonceStore {
    /// Records `nonce` for `machine` unless it is already recorded, atomically, and keeps it at
    /// least until `keep_until` (the nonce's own timestamp plus the allowed skew). `now` is the
    /// transport clock, which implementations may use to drop nonces whose `keep_until` passed.
    /// An unexpired nonce is never evicted: a store that is full must return an error.
    ///
    /// # Errors
    ///
    /// [`NonceStoreError`] when the store cannot decide; the request is then rejected.
    fn insert_if_absent(
        &self,
        machine: MachineId,
        nonce: &str,
        keep_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<NonceOutcome, NonceStoreError>;
}

/// The allowed difference between a request's timestamp and the transport clock, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaxSkew(u32);

impl MaxSkew {
    /// Makes a skew of `seconds`, from 0 to [`MAX_SKEW_SECONDS`].
    ///
    /// # Errors
    ///
    /// [`InvalidSkew`] when `seconds` is larger than [`MAX_SKEW_SECONDS`].
    pub fn from_secs(seconds: u32) -> Result<Self, InvalidSkew> {
        if seconds > MAX_SKEW_SECONDS {
            return Err(InvalidSkew { seconds });
        }
        Ok(Self(seconds))
    }

    /// The skew in seconds.
    pub fn as_secs(self) -> u32 {
        self.0
    }
}

impl Default for MaxSkew {
    fn default() -> Self {
        Self(DEFAULT_MAX_SKEW_SECONDS)
    }
}

/// A configured skew above [`MAX_SKEW_SECONDS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid timestamp skew `{seconds}` s: expected at most {MAX_SKEW_SECONDS} s (the default is {DEFAULT_MAX_SKEW_SECONDS} s)"
)]
pub struct InvalidSkew {
    seconds: u32,
}

/// A request timestamp: Unix seconds as the client sent them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Makes a timestamp for a client to sign, from Unix seconds; `None` for a negative value,
    /// which [`Timestamp::parse`] would reject.
    pub fn from_unix_seconds(seconds: i64) -> Option<Self> {
        (seconds >= 0).then_some(Self(seconds))
    }

    /// The timestamp in Unix seconds.
    pub fn unix_seconds(self) -> i64 {
        self.0
    }

    /// Parses the `X-Timestamp` header value.
    ///
    /// # Errors
    ///
    /// [`RequestError::InvalidHeader`] unless the value is 1 to 19 ASCII digits without a leading
    /// zero (the single digit `0` is allowed) whose value fits an `i64`.
    pub fn parse(value: &[u8]) -> Result<Self, RequestError> {
        const EXPECTED: &str = "decimal Unix seconds: digits only, without sign or leading zeros";
        let invalid = || RequestError::invalid_header(TIMESTAMP_HEADER, value, EXPECTED);
        let well_formed = !value.is_empty()
            && value.len() <= MAX_TIMESTAMP_DIGITS
            && value.iter().all(u8::is_ascii_digit)
            && (value.len() == 1 || value[0] != b'0');
        if !well_formed {
            return Err(invalid());
        }
        let mut seconds: i64 = 0;
        for digit in value {
            seconds = seconds
                .checked_mul(10)
                .and_then(|shifted| shifted.checked_add(i64::from(digit - b'0')))
                .ok_or_else(invalid)?;
        }
        Ok(Self(seconds))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A request nonce: opaque to the server, 1 to [`MAX_NONCE_LEN`] bytes of base64, URL-safe
/// base64 or hex characters. A `:` can never appear, so the signed payload splits one way only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nonce(String);

impl Nonce {
    /// Parses the `X-Nonce` header value.
    ///
    /// # Errors
    ///
    /// [`RequestError::InvalidHeader`] when the value is empty, longer than [`MAX_NONCE_LEN`]
    /// bytes, or contains a byte outside `A-Z a-z 0-9 + / = - _`.
    pub fn parse(value: &[u8]) -> Result<Self, RequestError> {
        let allowed = |byte: &u8| byte.is_ascii_alphanumeric() || b"+/=-_".contains(byte);
        let valid = !value.is_empty() && value.len() <= MAX_NONCE_LEN && value.iter().all(allowed);
        if !valid {
            return Err(RequestError::invalid_header(
                NONCE_HEADER,
                value,
                "1 to 128 characters of A-Z, a-z, 0-9, `+`, `/`, `=`, `-` and `_`",
            ));
        }
        // The alphabet check above admits only ASCII bytes, so this conversion cannot fail.
        // The error is still mapped rather than unwrapped, to keep the parser free of panics.
        let text = std::str::from_utf8(value)
            .map_err(|_| RequestError::invalid_header(NONCE_HEADER, value, "ASCII characters"))?;
        Ok(Self(text.to_owned()))
    }

    /// The nonce as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A request signature: 64 bytes of Ed25519, decoded from padded standard base64.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestSignature(Signature);

impl RequestSignature {
    /// Parses the `X-Signature` header value.
    ///
    /// # Errors
    ///
    /// [`RequestError::InvalidHeader`] unless the value is exactly 88 characters of canonical
    /// padded standard base64 encoding 64 bytes.
    pub fn parse(value: &[u8]) -> Result<Self, RequestError> {
        let invalid = || {
            RequestError::invalid_header(
                SIGNATURE_HEADER,
                value,
                "64 bytes in standard base64 with padding (88 characters)",
            )
        };
        // Checking the length first bounds the work of decoding whatever a client sends.
        if value.len() != SIGNATURE_BASE64_LEN {
            return Err(invalid());
        }
        let bytes = BASE64_STANDARD.decode(value).map_err(|_| invalid())?;
        let bytes: [u8; 64] = bytes.try_into().map_err(|_| invalid())?;
        Ok(Self(Signature::from_bytes(&bytes)))
    }

    /// The decoded signature.
    pub fn signature(&self) -> &Signature {
        &self.0
    }
}

impl fmt::Debug for RequestSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A signature is public, but 128 hex digits in a log line help no reader.
        f.write_str("RequestSignature(..)")
    }
}

/// A machine request as it arrived: method, raw path, the four header values and the body.
///
/// A header is `None` when the request did not carry it. Header names match case-insensitively;
/// finding them is the caller's job.
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    /// The HTTP method as sent, such as `GET`.
    pub method: &'a str,
    /// The raw request path without the query string, as sent (not percent-decoded).
    pub path: &'a str,
    pub machine_id: Option<&'a [u8]>,
    pub timestamp: Option<&'a [u8]>,
    pub nonce: Option<&'a [u8]>,
    pub signature: Option<&'a [u8]>,
    /// The exact body bytes; empty when there is no body.
    pub body: &'a [u8],
}

/// A machine request with each header parsed on its own, ready for step 3 and step 8.
///
/// Parsing never fails as a whole: each header keeps its own result, so the evaluator can report
/// each failure at the step that needs the header.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    method: String,
    path: String,
    body_hash: String,
    machine_id: Result<MachineId, RequestError>,
    timestamp: Result<Timestamp, RequestError>,
    nonce: Result<Nonce, RequestError>,
    signature: Result<RequestSignature, RequestError>,
}

impl SignedRequest {
    /// Parses each header of `raw` and hashes its body.
    pub fn parse(raw: &RawRequest<'_>) -> Self {
        Self {
            method: raw.method.to_owned(),
            path: raw.path.to_owned(),
            body_hash: body_hash(raw.body),
            machine_id: required(MACHINE_ID_HEADER, raw.machine_id).and_then(parse_machine_id),
            timestamp: required(TIMESTAMP_HEADER, raw.timestamp).and_then(Timestamp::parse),
            nonce: required(NONCE_HEADER, raw.nonce).and_then(Nonce::parse),
            signature: required(SIGNATURE_HEADER, raw.signature).and_then(RequestSignature::parse),
        }
    }

    /// The machine id from `X-Machine-Id`, for looking the machine up.
    ///
    /// # Errors
    ///
    /// The header's [`RequestError::MissingHeader`] or [`RequestError::InvalidHeader`].
    pub fn machine_id(&self) -> Result<MachineId, &RequestError> {
        self.machine_id.as_ref().copied()
    }

    /// The timestamp from `X-Timestamp`.
    ///
    /// # Errors
    ///
    /// The header's [`RequestError::MissingHeader`] or [`RequestError::InvalidHeader`].
    pub fn timestamp(&self) -> Result<Timestamp, &RequestError> {
        self.timestamp.as_ref().copied()
    }

    /// The lower-case hex SHA-256 of the body.
    pub fn body_hash(&self) -> &str {
        &self.body_hash
    }

    /// Builds the signed bytes `METHOD:path:timestamp:nonce:bodyHash`.
    ///
    /// # Errors
    ///
    /// The first header error of `X-Timestamp` or `X-Nonce`, which the payload needs.
    pub fn payload(&self) -> Result<Vec<u8>, RequestError> {
        let timestamp = self.timestamp.as_ref().map_err(Clone::clone)?;
        let nonce = self.nonce.as_ref().map_err(Clone::clone)?;
        Ok(signed_payload(
            &self.method,
            &self.path,
            *timestamp,
            nonce,
            &self.body_hash,
        ))
    }

    /// Runs step 8 for `machine`: header formats, the signature with `verify_strict`, the
    /// timestamp's freshness against `transport_now`, then the nonce.
    ///
    /// `machine` must be the id the request was looked up by; the nonce is recorded under it
    /// until the request's timestamp plus `max_skew`.
    ///
    /// # Errors
    ///
    /// - [`RequestError::MissingHeader`] or [`RequestError::InvalidHeader`] for `X-Timestamp`,
    ///   `X-Nonce` or `X-Signature`, in that order.
    /// - [`RequestError::BadSignature`] when `verify_strict` rejects the signature; the nonce
    ///   store is not called.
    /// - [`RequestError::StaleTimestamp`] when `|transport_now - timestamp| > max_skew`; the nonce
    ///   store is not called.
    /// - [`RequestError::Replayed`] when the store already holds the nonce for `machine`.
    /// - [`RequestError::NonceStore`] when the store cannot decide.
    pub fn verify(
        &self,
        machine: MachineId,
        key: &VerifyingKey,
        transport_now: DateTime<Utc>,
        max_skew: MaxSkew,
        nonces: &dyn NonceStore,
    ) -> Result<(), RequestError> {
        let timestamp = *self.timestamp.as_ref().map_err(Clone::clone)?;
        let nonce = self.nonce.as_ref().map_err(Clone::clone)?;
        let signature = self.signature.as_ref().map_err(Clone::clone)?;

        let payload = signed_payload(&self.method, &self.path, timestamp, nonce, &self.body_hash);
        verify_signature(key, &payload, signature)
            .map_err(|BadSignature| RequestError::BadSignature(BadSignatureError { machine }))?;

        let keep_until = check_freshness(timestamp, transport_now, max_skew)?;

        match nonces.insert_if_absent(machine, nonce.as_str(), keep_until, transport_now) {
            Ok(NonceOutcome::Recorded) => Ok(()),
            Ok(NonceOutcome::Replayed) => Err(RequestError::Replayed(ReplayedError {
                machine,
                nonce: nonce.as_str().to_owned(),
            })),
            Err(error) => Err(RequestError::NonceStore(error)),
        }
    }
}

fn required<'a>(header: &'static str, value: Option<&'a [u8]>) -> Result<&'a [u8], RequestError> {
    value.ok_or(RequestError::MissingHeader(MissingHeader { header }))
}

fn parse_machine_id(value: &[u8]) -> Result<MachineId, RequestError> {
    const EXPECTED: &str = "a hyphenated UUID";
    let text = std::str::from_utf8(value)
        .map_err(|_| RequestError::invalid_header(MACHINE_ID_HEADER, value, EXPECTED))?;
    text.parse()
        .map_err(|_| RequestError::invalid_header(MACHINE_ID_HEADER, value, EXPECTED))
}

/// Computes the lower-case hex SHA-256 of `body`.
pub fn body_hash(body: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(body);
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Builds the UTF-8 bytes `METHOD:path:timestamp:nonce:bodyHash` that a machine signs.
pub fn signed_payload(
    method: &str,
    path: &str,
    timestamp: Timestamp,
    nonce: &Nonce,
    body_hash: &str,
) -> Vec<u8> {
    format!("{method}:{path}:{timestamp}:{}:{body_hash}", nonce.as_str()).into_bytes()
}

/// A signature that `verify_strict` rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadSignature;

/// Verifies `signature` over `payload` with `verify_strict`, which also rejects small-order keys
/// and `R` values, non-canonical `R` encodings and `S` values not below the group order.
///
/// # Errors
///
/// [`BadSignature`] when the signature does not verify.
pub fn verify_signature(
    key: &VerifyingKey,
    payload: &[u8],
    signature: &RequestSignature,
) -> Result<(), BadSignature> {
    key.verify_strict(payload, signature.signature())
        .map_err(|_| BadSignature)
}

/// Checks that `timestamp` lies within `max_skew` of `transport_now`, both ends included, and
/// returns the instant until which its nonce must be kept (`timestamp + max_skew`).
///
/// # Errors
///
/// [`RequestError::StaleTimestamp`] when `|transport_now - timestamp| > max_skew`, for any
/// `i64` timestamp.
pub fn check_freshness(
    timestamp: Timestamp,
    transport_now: DateTime<Utc>,
    max_skew: MaxSkew,
) -> Result<DateTime<Utc>, RequestError> {
    let stale = || {
        RequestError::StaleTimestamp(StaleTimestamp {
            timestamp,
            now: transport_now,
            max_skew,
        })
    };
    // i128 holds the difference of any two i64 values, so no client value overflows here.
    let difference = i128::from(transport_now.timestamp()) - i128::from(timestamp.0);
    if difference.abs() > i128::from(max_skew.0) {
        return Err(stale());
    }
    // The timestamp is within an hour of a valid instant, so this cannot leave chrono's range;
    // the checked form still turns the impossible case into a rejection.
    timestamp
        .0
        .checked_add(i64::from(max_skew.0))
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
        .ok_or_else(stale)
}

/// Why a signed request failed step 8, or why its machine id could not be read (step 3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    #[error(transparent)]
    MissingHeader(MissingHeader),
    #[error(transparent)]
    InvalidHeader(InvalidHeader),
    #[error(transparent)]
    BadSignature(BadSignatureError),
    #[error(transparent)]
    StaleTimestamp(StaleTimestamp),
    #[error(transparent)]
    Replayed(ReplayedError),
    #[error(transparent)]
    NonceStore(NonceStoreError),
}

impl RequestError {
    fn invalid_header(header: &'static str, value: &[u8], expected: &'static str) -> Self {
        Self::InvalidHeader(InvalidHeader {
            header,
            value: echo(value),
            expected,
        })
    }
}

/// Repeats at most [`ECHO_LIMIT`] bytes of a rejected value, escaped to printable ASCII.
fn echo(value: &[u8]) -> String {
    let shown = value.get(..ECHO_LIMIT).unwrap_or(value);
    let mut text = shown.escape_ascii().to_string();
    if value.len() > ECHO_LIMIT {
        text.push_str("...");
    }
    text
}

/// A required header that the request did not carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "missing header `{header}`: sign every request and send X-Machine-Id, X-Timestamp, X-Nonce and X-Signature"
)]
pub struct MissingHeader {
    header: &'static str,
}

impl MissingHeader {
    /// The missing header's name.
    pub fn header(&self) -> &'static str {
        self.header
    }
}

/// A header whose value does not have the expected format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid header `{header}` value `{value}`: expected {expected}")]
pub struct InvalidHeader {
    header: &'static str,
    value: String,
    expected: &'static str,
}

impl InvalidHeader {
    /// The header's name.
    pub fn header(&self) -> &'static str {
        self.header
    }

    /// The start of the rejected value, escaped to printable ASCII.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// A signature that does not verify with the machine's registered key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid signature for machine `{machine}`: sign `METHOD:path:timestamp:nonce:bodyHash` with the machine's registered key"
)]
pub struct BadSignatureError {
    machine: MachineId,
}

impl BadSignatureError {
    /// The machine the request claimed to come from.
    pub fn machine(&self) -> MachineId {
        self.machine
    }
}

/// A timestamp further than the allowed skew from the transport clock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "stale timestamp `{timestamp}`: the server time is `{}` and at most {} s of skew is allowed, so check the client's clock",
    now.timestamp(),
    max_skew.0
)]
pub struct StaleTimestamp {
    timestamp: Timestamp,
    now: DateTime<Utc>,
    max_skew: MaxSkew,
}

impl StaleTimestamp {
    /// The request's timestamp.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The transport clock's instant it was checked against.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The allowed skew.
    pub fn max_skew(&self) -> MaxSkew {
        self.max_skew
    }
}

/// A nonce that the machine already used within its retention period.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "replayed request: nonce `{nonce}` was already used by machine `{machine}`, so send a fresh nonce with every request"
)]
pub struct ReplayedError {
    machine: MachineId,
    nonce: String,
}

impl ReplayedError {
    /// The machine the nonce was recorded for.
    pub fn machine(&self) -> MachineId {
        self.machine
    }

    /// The replayed nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::HashSet;

    use ed25519_dalek::{Signer as _, SigningKey};

    use super::*;

    const MACHINE: &str = "6f1c2a4e-0b7d-4c1e-9a35-2f0d8c7b6e51";
    const NOW: i64 = 1_760_000_000;

    #[derive(Default)]
    struct MemoryNonces {
        seen: RefCell<HashSet<(MachineId, String)>>,
        calls: Cell<usize>,
        fail: bool,
    }

    impl NonceStore for MemoryNonces {
        fn insert_if_absent(
            &self,
            machine: MachineId,
            nonce: &str,
            _keep_until: DateTime<Utc>,
            _now: DateTime<Utc>,
        ) -> Result<NonceOutcome, NonceStoreError> {
            self.calls.set(self.calls.get() + 1);
            if self.fail {
                return Err(NonceStoreError::new("store full"));
            }
            if self.seen.borrow_mut().insert((machine, nonce.to_owned())) {
                Ok(NonceOutcome::Recorded)
            } else {
                Ok(NonceOutcome::Replayed)
            }
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(NOW, 0).unwrap()
    }

    fn machine() -> MachineId {
        MACHINE.parse().unwrap()
    }

    /// Signs a request the way the official clients do and returns its header values.
    fn sign(timestamp: &str, nonce: &str, body: &[u8]) -> String {
        let payload = format!(
            "GET:/v1/secret/sk_abcdefghij:{timestamp}:{nonce}:{}",
            body_hash(body)
        );
        BASE64_STANDARD.encode(key().sign(payload.as_bytes()).to_bytes())
    }

    fn parse(timestamp: &str, nonce: &str, signature: &str, body: &[u8]) -> SignedRequest {
        SignedRequest::parse(&RawRequest {
            method: "GET",
            path: "/v1/secret/sk_abcdefghij",
            machine_id: Some(MACHINE.as_bytes()),
            timestamp: Some(timestamp.as_bytes()),
            nonce: Some(nonce.as_bytes()),
            signature: Some(signature.as_bytes()),
            body,
        })
    }

    fn verify(request: &SignedRequest, nonces: &MemoryNonces) -> Result<(), RequestError> {
        request.verify(
            machine(),
            &key().verifying_key(),
            now(),
            MaxSkew::default(),
            nonces,
        )
    }

    fn signed_at(timestamp: i64, nonce: &str) -> SignedRequest {
        let text = timestamp.to_string();
        parse(&text, nonce, &sign(&text, nonce, b""), b"")
    }

    #[test]
    fn client_timestamp_matches_parsed_one() {
        let made = Timestamp::from_unix_seconds(1_700_000_000).unwrap();
        assert_eq!(Timestamp::parse(b"1700000000").unwrap(), made);
        assert_eq!(Timestamp::from_unix_seconds(-1), None);
    }

    #[test]
    fn body_hash_of_empty_body() {
        assert_eq!(
            body_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn payload_layout() {
        let request = parse("1760000000", "bm9uY2U=", "", b"{}");
        let payload = String::from_utf8(request.payload().unwrap()).unwrap();
        assert_eq!(
            payload,
            format!(
                "GET:/v1/secret/sk_abcdefghij:1760000000:bm9uY2U=:{}",
                body_hash(b"{}")
            )
        );
    }

    #[test]
    fn valid_request_verifies() {
        let nonces = MemoryNonces::default();
        let nonce = "AAECAwQFBgcICQoLDA0ODw==";
        let body = br#"{"projectId":"proj_0123456789"}"#;
        let request = parse("1760000000", nonce, &sign("1760000000", nonce, body), body);
        assert_eq!(verify(&request, &nonces), Ok(()));
        assert_eq!(nonces.calls.get(), 1);
    }

    #[test]
    fn replay_is_rejected() {
        let nonces = MemoryNonces::default();
        let request = signed_at(NOW, "abcdef0123456789");
        assert_eq!(verify(&request, &nonces), Ok(()));
        let err = verify(&request, &nonces).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "replayed request: nonce `abcdef0123456789` was already used by machine `{MACHINE}`, so send a fresh nonce with every request"
            )
        );
    }

    #[test]
    fn bad_signature_skips_nonce_store() {
        let nonces = MemoryNonces::default();
        let signature = sign("1760000000", "abc", b"");
        // Same signature, different body: the body hash no longer matches.
        let request = parse("1760000000", "abc", &signature, b"tampered");
        let err = verify(&request, &nonces).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid signature for machine `{MACHINE}`: sign `METHOD:path:timestamp:nonce:bodyHash` with the machine's registered key"
            )
        );
        assert_eq!(nonces.calls.get(), 0);
    }

    #[test]
    fn other_key_is_rejected() {
        let nonces = MemoryNonces::default();
        let request = signed_at(NOW, "abc");
        let other = SigningKey::from_bytes(&[9; 32]).verifying_key();
        let result = request.verify(machine(), &other, now(), MaxSkew::default(), &nonces);
        assert!(matches!(result, Err(RequestError::BadSignature(_))));
        assert_eq!(nonces.calls.get(), 0);
    }

    #[test]
    fn skew_bounds_are_inclusive() {
        let skew = i64::from(DEFAULT_MAX_SKEW_SECONDS);
        for (offset, accepted) in [
            (-skew, true),
            (skew, true),
            (-skew - 1, false),
            (skew + 1, false),
        ] {
            let nonces = MemoryNonces::default();
            let request = signed_at(NOW + offset, "abc");
            let result = verify(&request, &nonces);
            assert_eq!(result.is_ok(), accepted, "offset {offset}: {result:?}");
            assert_eq!(nonces.calls.get(), usize::from(accepted), "offset {offset}");
        }
    }

    #[test]
    fn stale_timestamp_message() {
        let nonces = MemoryNonces::default();
        let request = signed_at(NOW - 61, "abc");
        let err = verify(&request, &nonces).unwrap_err();
        assert_eq!(
            err.to_string(),
            "stale timestamp `1759999939`: the server time is `1760000000` and at most 60 s of skew is allowed, so check the client's clock"
        );
    }

    #[test]
    fn freshness_never_overflows() {
        let skew = MaxSkew::default();
        for seconds in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
            let result = check_freshness(Timestamp(seconds), now(), skew);
            assert!(
                matches!(result, Err(RequestError::StaleTimestamp(_))),
                "{seconds}: {result:?}"
            );
        }
        let far_future = DateTime::<Utc>::MAX_UTC;
        assert!(check_freshness(Timestamp(i64::MIN), far_future, skew).is_err());
        let keep_until = check_freshness(Timestamp(NOW + 60), now(), skew).unwrap();
        assert_eq!(keep_until.timestamp(), NOW + 120);
    }

    #[test]
    fn timestamp_parse_rejects_bad_forms() {
        let expected = "expected decimal Unix seconds: digits only, without sign or leading zeros";
        for bad in [
            "",
            "-1",
            "+1",
            "01",
            " 1",
            "1.5",
            "1e9",
            "9223372036854775808",
            "99999999999999999999",
            "-9223372036854775808",
            "00000000000000000000000000000000000000000000001",
        ] {
            let err = Timestamp::parse(bad.as_bytes()).unwrap_err();
            let shown = if bad.len() > 40 {
                format!("{}...", &bad[..40])
            } else {
                bad.to_owned()
            };
            assert_eq!(
                err.to_string(),
                format!("invalid header `X-Timestamp` value `{shown}`: {expected}"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn timestamp_parse_accepts_extremes() {
        assert_eq!(Timestamp::parse(b"0").unwrap().unix_seconds(), 0);
        assert_eq!(
            Timestamp::parse(b"9223372036854775807")
                .unwrap()
                .unix_seconds(),
            i64::MAX
        );
    }

    #[test]
    fn extreme_timestamp_request_is_stale() {
        let nonces = MemoryNonces::default();
        let request = signed_at(i64::MAX, "abc");
        let err = verify(&request, &nonces).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("stale timestamp `9223372036854775807`"),
            "{err}"
        );
        assert_eq!(nonces.calls.get(), 0);
    }

    #[test]
    fn nonce_parse_rejects_bad_forms() {
        let too_long = "a".repeat(MAX_NONCE_LEN + 1);
        assert!(Nonce::parse("a".repeat(MAX_NONCE_LEN).as_bytes()).is_ok());
        for bad in ["", "a:b", "a b", "é", too_long.as_str(), "a\0"] {
            let err = Nonce::parse(bad.as_bytes()).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("invalid header `X-Nonce` value `"),
                "{bad:?}: {err}"
            );
            assert!(err.to_string().ends_with(
                "`: expected 1 to 128 characters of A-Z, a-z, 0-9, `+`, `/`, `=`, `-` and `_`"
            ));
        }
        let err = Nonce::parse(b"a\xffb").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid header `X-Nonce` value `a\\xffb`: expected 1 to 128 characters of A-Z, a-z, 0-9, `+`, `/`, `=`, `-` and `_`"
        );
    }

    #[test]
    fn signature_parse_rejects_bad_forms() {
        let good = sign("1", "a", b"");
        assert!(RequestSignature::parse(good.as_bytes()).is_ok());
        let unpadded = good.trim_end_matches('=').to_owned();
        let url_safe = good.replace('+', "-").replace('/', "_");
        let mut bad_padding_bits = good.clone();
        // The last data character before `==` carries 4 unused bits; setting one is non-canonical.
        bad_padding_bits.replace_range(85..86, "B");
        let short = BASE64_STANDARD.encode([0u8; 63]);
        for bad in [unpadded.as_str(), "", short.as_str(), &"A".repeat(200)] {
            let err = RequestSignature::parse(bad.as_bytes()).unwrap_err();
            assert!(
                err.to_string().ends_with(
                    "`: expected 64 bytes in standard base64 with padding (88 characters)"
                ),
                "{bad:?}: {err}"
            );
        }
        if url_safe != good {
            assert!(RequestSignature::parse(url_safe.as_bytes()).is_err());
        }
        if bad_padding_bits != good {
            assert!(RequestSignature::parse(bad_padding_bits.as_bytes()).is_err());
        }
    }

    #[test]
    fn missing_headers_are_named() {
        let nonces = MemoryNonces::default();
        let request = SignedRequest::parse(&RawRequest {
            method: "GET",
            path: "/v1/secrets",
            machine_id: None,
            timestamp: None,
            nonce: Some(b"abc"),
            signature: None,
            body: b"",
        });
        assert_eq!(
            request.machine_id().unwrap_err().to_string(),
            "missing header `X-Machine-Id`: sign every request and send X-Machine-Id, X-Timestamp, X-Nonce and X-Signature"
        );
        let err = verify(&request, &nonces).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing header `X-Timestamp`: sign every request and send X-Machine-Id, X-Timestamp, X-Nonce and X-Signature"
        );
        assert_eq!(nonces.calls.get(), 0);
    }

    #[test]
    fn machine_id_error_is_truncated() {
        let long = "x".repeat(500);
        let request = SignedRequest::parse(&RawRequest {
            method: "GET",
            path: "/v1/secrets",
            machine_id: Some(long.as_bytes()),
            timestamp: None,
            nonce: None,
            signature: None,
            body: b"",
        });
        assert_eq!(
            request.machine_id().unwrap_err().to_string(),
            format!(
                "invalid header `X-Machine-Id` value `{}...`: expected a hyphenated UUID",
                "x".repeat(40)
            )
        );
    }

    #[test]
    fn nonce_store_failure_fails_closed() {
        let nonces = MemoryNonces {
            fail: true,
            ..MemoryNonces::default()
        };
        let err = verify(&signed_at(NOW, "abc"), &nonces).unwrap_err();
        assert_eq!(err.to_string(), "nonce store unavailable: store full");
    }

    #[test]
    fn skew_is_bounded() {
        assert_eq!(MaxSkew::from_secs(3_600).unwrap().as_secs(), 3_600);
        assert_eq!(MaxSkew::default().as_secs(), 60);
        let err = MaxSkew::from_secs(3_601).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid timestamp skew `3601` s: expected at most 3600 s (the default is 60 s)"
        );
    }

    #[test]
    fn zero_skew_accepts_exact_time_only() {
        let skew = MaxSkew::from_secs(0).unwrap();
        assert!(check_freshness(Timestamp(NOW), now(), skew).is_ok());
        assert!(check_freshness(Timestamp(NOW + 1), now(), skew).is_err());
    }
}
