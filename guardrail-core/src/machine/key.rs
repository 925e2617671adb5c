//! Registration checks on a machine's Ed25519 public key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;

use super::PublicKeyError;

/// An Ed25519 public key that passed registration checks: 32 bytes, a canonical encoding of a
/// curve point, and not of small order.
#[derive(Clone, PartialEq, Eq)]
pub struct MachinePublicKey {
    key: VerifyingKey,
}

impl MachinePublicKey {
    /// Checks raw key bytes as sent at registration.
    ///
    /// # Errors
    ///
    /// [`PublicKeyError`] when the input is not 32 bytes, not a curve point, not the canonical
    /// encoding of its point (decompressing and compressing again gives other bytes), or a point
    /// of small order.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PublicKeyError> {
        let raw: &[u8; 32] = bytes
            .try_into()
            .map_err(|_| PublicKeyError::Length(bytes.len()))?;
        let key = VerifyingKey::from_bytes(raw).map_err(|_| PublicKeyError::NotOnCurve)?;
        // `from_bytes` accepts a y-coordinate at or above the field prime and a sign bit on
        // x = 0; the compressed form of the decoded point is the one canonical encoding.
        if key.to_edwards().compress().as_bytes() != raw {
            return Err(PublicKeyError::NonCanonical);
        }
        if key.is_weak() {
            return Err(PublicKeyError::SmallOrder);
        }
        Ok(Self { key })
    }

    /// Decodes standard base64 with padding (the register body's `publicKey`), then checks the
    /// bytes like [`MachinePublicKey::from_bytes`].
    ///
    /// # Errors
    ///
    /// [`PublicKeyError::Base64`] when the text is not padded standard base64, and the errors of
    /// [`MachinePublicKey::from_bytes`].
    pub fn from_base64(text: &str) -> Result<Self, PublicKeyError> {
        let bytes = STANDARD.decode(text).map_err(|_| PublicKeyError::Base64)?;
        Self::from_bytes(&bytes)
    }

    /// The decoded key, ready for `verify_strict`.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The raw 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The key in standard base64 with padding, as the register body carries it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.key.as_bytes())
    }
}

impl std::fmt::Debug for MachinePublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Public keys are not secret; print them as hex so logs can be matched against clients.
        f.write_str("MachinePublicKey(")?;
        for byte in self.key.as_bytes() {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Ed25519 base point, a valid key of prime order (RFC 8032, section 5.1).
    const BASE_POINT: [u8; 32] = [
        0x58, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
        0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
        0x66, 0x66,
    ];

    /// The little-endian encoding of `p + small` where p = 2^255 - 19, so y is not reduced.
    fn unreduced_y(small: u8) -> [u8; 32] {
        let mut bytes = [0xff; 32];
        bytes[31] = 0x7f;
        bytes[0] = 0xed + small;
        bytes
    }

    #[test]
    fn base_point_accepted_and_round_trips() {
        let key = MachinePublicKey::from_bytes(&BASE_POINT).unwrap();
        assert_eq!(key.to_bytes(), BASE_POINT);
        let again = MachinePublicKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(again, key);
        assert_eq!(
            format!("{key:?}"),
            format!("MachinePublicKey(58{})", "66".repeat(31))
        );
    }

    #[test]
    fn wrong_length_rejected() {
        let err = MachinePublicKey::from_bytes(&[0x58; 31]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid public key: expected 32 bytes of raw Ed25519 key, got 31 bytes"
        );
        assert_eq!(
            MachinePublicKey::from_bytes(&[0; 33]).unwrap_err(),
            PublicKeyError::Length(33)
        );
    }

    #[test]
    fn identity_is_small_order() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let err = MachinePublicKey::from_bytes(&identity).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid public key: the point has small order"
        );
    }

    #[test]
    fn unreduced_y_is_non_canonical() {
        // Of the 19 encodings with y >= p, some decode to points; every one must be rejected,
        // and at least one must be rejected for its encoding rather than its order.
        let mut non_canonical = 0;
        for small in 0..19 {
            match MachinePublicKey::from_bytes(&unreduced_y(small)) {
                Ok(_) => panic!("y = p + {small} was accepted"),
                Err(PublicKeyError::NonCanonical) => non_canonical += 1,
                Err(_) => {}
            }
        }
        assert!(non_canonical > 0);
        let err = MachinePublicKey::from_bytes(&unreduced_y(1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid public key: the point is not canonically encoded"
        );
    }

    #[test]
    fn negative_zero_x_is_non_canonical() {
        // y = 1 with the sign bit set: x = 0 has no negative, so this is another spelling of the
        // identity point.
        let mut bytes = [0u8; 32];
        bytes[0] = 1;
        bytes[31] = 0x80;
        let err = MachinePublicKey::from_bytes(&bytes).unwrap_err();
        assert_eq!(err, PublicKeyError::NonCanonical);
    }

    #[test]
    fn off_curve_rejected() {
        // y = 2 is not the y-coordinate of any point on edwards25519.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        let err = MachinePublicKey::from_bytes(&bytes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid public key: the bytes are not an Ed25519 curve point"
        );
    }

    #[test]
    fn base64_needs_padding_and_standard_alphabet() {
        let text = STANDARD.encode(BASE_POINT);
        assert!(text.ends_with('='));
        let err = MachinePublicKey::from_base64(text.trim_end_matches('=')).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid public key: not standard base64 with padding"
        );
        let url_safe = text.replace('+', "-").replace('/', "_");
        if url_safe != text {
            assert_eq!(
                MachinePublicKey::from_base64(&url_safe).unwrap_err(),
                PublicKeyError::Base64
            );
        }
        assert_eq!(
            MachinePublicKey::from_base64("AAAA").unwrap_err(),
            PublicKeyError::Length(3)
        );
    }
}
