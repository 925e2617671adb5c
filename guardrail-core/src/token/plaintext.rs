//! The bootstrap token's plaintext: made once from random bytes, shown once, never stored.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use super::TokenHash;

/// The fewest random bytes a token is made from (256 bits).
pub const MIN_TOKEN_RANDOM_BYTES: usize = 32;
/// The most random bytes a token is made from; this bounds the plaintext length.
pub const MAX_TOKEN_RANDOM_BYTES: usize = 64;
/// The shortest plaintext accepted: 32 bytes in base64url without padding.
pub const MIN_TOKEN_CHARS: usize = 43;
/// The longest plaintext accepted: 64 bytes in base64url without padding.
pub const MAX_TOKEN_CHARS: usize = 86;

/// A token plaintext. It has no `Debug` or `Display`, and its memory is zeroed on drop; read it
/// with [`TokenPlaintext::expose_secret`] only to put it in the issuance response.
pub struct TokenPlaintext {
    text: String,
}

/// The caller supplied too few or too many random bytes for a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a bootstrap token needs {MIN_TOKEN_RANDOM_BYTES} to {MAX_TOKEN_RANDOM_BYTES} random bytes, \
     got `{len}`: draw them from the operating system's CSPRNG"
)]
pub struct TokenRandomnessError {
    len: usize,
}

/// A presented token string that cannot be a token: wrong length or a character outside the
/// base64url alphabet. The message never repeats the presented text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "malformed bootstrap token: expected {MIN_TOKEN_CHARS} to {MAX_TOKEN_CHARS} base64url \
     characters, got {len} characters{}",
    if *.bad_character { " with a character outside the alphabet" } else { "" }
)]
pub struct InvalidTokenFormat {
    len: usize,
    bad_character: bool,
}

impl TokenPlaintext {
    /// Makes a token from random bytes the caller drew from a CSPRNG: their base64url encoding
    /// without padding.
    ///
    /// # Errors
    ///
    /// [`TokenRandomnessError`] when `bytes` holds fewer than [`MIN_TOKEN_RANDOM_BYTES`] or more
    /// than [`MAX_TOKEN_RANDOM_BYTES`] bytes.
    pub fn from_random_bytes(bytes: &[u8]) -> Result<Self, TokenRandomnessError> {
        if !(MIN_TOKEN_RANDOM_BYTES..=MAX_TOKEN_RANDOM_BYTES).contains(&bytes.len()) {
            return Err(TokenRandomnessError { len: bytes.len() });
        }
        Ok(Self {
            text: URL_SAFE_NO_PAD.encode(bytes),
        })
    }

    /// Parses a token presented by a client, checking only its form.
    ///
    /// # Errors
    ///
    /// [`InvalidTokenFormat`] when the length is outside [`MIN_TOKEN_CHARS`] to
    /// [`MAX_TOKEN_CHARS`] bytes or a character is not `A-Z`, `a-z`, `0-9`, `-` or `_`.
    pub fn parse(presented: &str) -> Result<Self, InvalidTokenFormat> {
        let len = presented.len();
        let bad_character = !presented
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if bad_character || !(MIN_TOKEN_CHARS..=MAX_TOKEN_CHARS).contains(&len) {
            return Err(InvalidTokenFormat { len, bad_character });
        }
        Ok(Self {
            text: presented.to_owned(),
        })
    }

    /// The plaintext. Put it only in the issuance response; never log it.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }

    /// The SHA-256 hash of the plaintext's bytes, the form in which the token is stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.text.as_bytes()).into())
    }
}

impl Drop for TokenPlaintext {
    fn drop(&mut self) {
        self.text.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_is_base64url_of_bytes() {
        let token = TokenPlaintext::from_random_bytes(&[0xfb; 32]).unwrap();
        assert_eq!(token.expose_secret().len(), 43);
        assert_eq!(
            token.expose_secret(),
            format!("{}-_s", "-_v7".repeat(10)).as_str()
        );
    }

    #[test]
    fn too_few_random_bytes_rejected() {
        let err = TokenPlaintext::from_random_bytes(&[1; 31]).err().unwrap();
        assert_eq!(
            err.to_string(),
            "a bootstrap token needs 32 to 64 random bytes, got `31`: draw them from the \
             operating system's CSPRNG"
        );
        assert!(TokenPlaintext::from_random_bytes(&[1; 65]).is_err());
        assert!(TokenPlaintext::from_random_bytes(&[1; 64]).is_ok());
    }

    #[test]
    fn hash_is_sha256_of_text() {
        let token = TokenPlaintext::parse(&"a".repeat(43)).unwrap();
        let expected: [u8; 32] = Sha256::digest("a".repeat(43).as_bytes()).into();
        assert_eq!(token.hash(), TokenHash(expected));
    }

    #[test]
    fn parse_round_trips_issued_token() {
        let issued = TokenPlaintext::from_random_bytes(&[0x42; 40]).unwrap();
        let parsed = TokenPlaintext::parse(issued.expose_secret()).unwrap();
        assert_eq!(parsed.hash(), issued.hash());
    }

    #[test]
    fn parse_rejects_bad_length() {
        let err = TokenPlaintext::parse("abc").err().unwrap();
        assert_eq!(
            err.to_string(),
            "malformed bootstrap token: expected 43 to 86 base64url characters, got 3 characters"
        );
        assert!(TokenPlaintext::parse(&"a".repeat(87)).is_err());
        assert!(TokenPlaintext::parse(&"a".repeat(86)).is_ok());
    }

    #[test]
    fn parse_rejects_bad_characters() {
        for bad in ["+", "/", "=", " ", "%", "é"] {
            let text = format!("{}{bad}", "a".repeat(42));
            let err = TokenPlaintext::parse(&text).err().unwrap();
            assert!(
                err.to_string()
                    .ends_with("characters with a character outside the alphabet"),
                "{bad:?}: {err}"
            );
            assert!(!err.to_string().contains(&text));
        }
    }
}
