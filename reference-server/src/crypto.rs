//! Encryption of secret values at rest with XChaCha20-Poly1305.
//!
//! A stored value is `0x01 || nonce (24 bytes) || ciphertext || tag (16 bytes)`. The nonce is
//! random per encryption (192 bits, so random nonces do not collide in practice). The associated
//! data binds the ciphertext to its secret id and version, so that a value copied to another
//! secret's row, or to another version of the same secret, fails to decrypt.
//!
//! # Key
//!
//! The 32-byte key is written as standard base64 on one line, in a key file or in the
//! `GUARDRAIL_SECRET_KEY` environment variable. [`SecretKey`] has no `Debug` and is zeroed on
//! drop. A key file that group or others can read is accepted with a warning in the log.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use guardrail_core::ids::SecretId;
use zeroize::{Zeroize, Zeroizing};

/// Length of the key in bytes.
pub const KEY_LEN: usize = 32;
const FORMAT_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// A secret-encryption key problem, or a value that cannot be decrypted.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key text is not base64 of exactly 32 bytes.
    #[error(
        "invalid secret key: expected standard base64 of exactly {KEY_LEN} bytes, as `openssl rand -base64 32` writes"
    )]
    InvalidKey,
    /// The key file could not be read or written.
    #[error("cannot {action} secret key file `{path}`: {source}")]
    KeyFile {
        /// `read` or `create`.
        action: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Random(getrandom::Error),
    /// A stored value is malformed, was made with another key, or belongs to another secret or
    /// version.
    #[error(
        "cannot decrypt the value of secret `{secret_id}` version {version}: wrong key, or the stored value was altered or moved"
    )]
    Decrypt {
        /// The secret.
        secret_id: String,
        /// Its version.
        version: u64,
    },
    /// Encryption failed (only for messages beyond the cipher's length limit).
    #[error("cannot encrypt the value of secret `{0}`")]
    Encrypt(String),
}

/// The 32-byte secret-encryption key. No `Debug`, zeroed on drop.
#[derive(Clone)]
pub struct SecretKey([u8; KEY_LEN]);

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl SecretKey {
    /// Parses a key from standard base64; surrounding whitespace is ignored.
    ///
    /// # Errors
    ///
    /// [`CryptoError::InvalidKey`] unless the text decodes to exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| CryptoError::InvalidKey)?,
        );
        let array: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::InvalidKey)?;
        Ok(Self(array))
    }

    /// Draws a new key from the operating system's CSPRNG.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Random`] when the system generator fails.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Self([0; KEY_LEN]);
        getrandom::fill(&mut key.0).map_err(CryptoError::Random)?;
        Ok(key)
    }

    /// Reads a key file.
    ///
    /// # Errors
    ///
    /// [`CryptoError::KeyFile`] when the file cannot be read, [`CryptoError::InvalidKey`] when
    /// it does not hold a key.
    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            CryptoError::KeyFile {
                action: "read",
                path: path.display().to_string(),
                source,
            }
        })?);
        warn_if_shared(path);
        Self::from_base64(&text)
    }

    /// Reads a key file, or creates it with a new key (mode 600) when it does not exist.
    /// Returns the key and whether the file was created.
    ///
    /// # Errors
    ///
    /// [`CryptoError::KeyFile`] when the file can be neither read nor created,
    /// [`CryptoError::InvalidKey`] when an existing file does not hold a key.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), CryptoError> {
        if path.exists() {
            return Self::load(path).map(|key| (key, false));
        }
        let key = Self::generate()?;
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let create_error = |source| CryptoError::KeyFile {
            action: "create",
            path: path.display().to_string(),
            source,
        };
        let mut file = options.open(path).map_err(create_error)?;
        let mut text = Zeroizing::new(STANDARD.encode(key.0));
        text.push('\n');
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(create_error)?;
        tracing::info!(path = %path.display(), "created a new secret-encryption key file: back it up, since stored secrets cannot be read without it");
        Ok((key, true))
    }
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", metadata.permissions().mode() & 0o777), "secret key file is readable by group or others: run chmod 600 on it");
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path) {}

/// Encrypts and decrypts secret values with one key.
pub struct SecretCipher {
    cipher: XChaCha20Poly1305,
}

impl SecretCipher {
    /// Makes a cipher from a key.
    pub fn new(key: &SecretKey) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(&key.0.into()),
        }
    }

    /// Encrypts `plaintext` as version `version` of `secret_id`.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Random`] when no nonce can be drawn, [`CryptoError::Encrypt`] for values
    /// beyond the cipher's limit (about 256 GiB).
    pub fn encrypt(
        &self,
        secret_id: &SecretId,
        version: u64,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(CryptoError::Random)?;
        let aad = associated_data(secret_id, version);
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Encrypt(secret_id.to_string()))?;
        let mut stored = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        stored.push(FORMAT_VERSION);
        stored.extend_from_slice(&nonce);
        stored.extend_from_slice(&sealed);
        Ok(stored)
    }

    /// Decrypts a stored value of version `version` of `secret_id`.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Decrypt`] when the value is malformed, was encrypted with another key, or
    /// belongs to another secret or version.
    pub fn decrypt(
        &self,
        secret_id: &SecretId,
        version: u64,
        stored: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let failed = || CryptoError::Decrypt {
            secret_id: secret_id.to_string(),
            version,
        };
        let (&format, rest) = stored.split_first().ok_or_else(failed)?;
        if format != FORMAT_VERSION || rest.len() < NONCE_LEN + TAG_LEN {
            return Err(failed());
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| failed())?;
        let aad = associated_data(secret_id, version);
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| failed())
    }
}

/// `guardrail-secret-v1`, NUL, the secret id, NUL, the version as 8 big-endian bytes. Secret
/// ids cannot contain NUL, so distinct pairs give distinct bytes.
fn associated_data(secret_id: &SecretId, version: u64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + secret_id.as_str().len());
    aad.extend_from_slice(b"guardrail-secret-v1\0");
    aad.extend_from_slice(secret_id.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(id: &str) -> SecretId {
        id.parse().unwrap()
    }

    #[test]
    fn round_trip() {
        let cipher = SecretCipher::new(&SecretKey::generate().unwrap());
        let id = secret("sk_abcdefghij");
        let stored = cipher.encrypt(&id, 3, b"hunter2").unwrap();
        assert_eq!(stored.len(), 1 + NONCE_LEN + 7 + TAG_LEN);
        assert_eq!(stored[0], FORMAT_VERSION);
        assert!(!stored.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            cipher.decrypt(&id, 3, &stored).unwrap().as_slice(),
            b"hunter2"
        );
        // A fresh nonce each time.
        assert_ne!(cipher.encrypt(&id, 3, b"hunter2").unwrap(), stored);
    }

    #[test]
    fn bound_to_secret_and_version() {
        let cipher = SecretCipher::new(&SecretKey::generate().unwrap());
        let id = secret("sk_abcdefghij");
        let stored = cipher.encrypt(&id, 1, b"value").unwrap();
        let error = cipher.decrypt(&id, 2, &stored).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot decrypt the value of secret `sk_abcdefghij` version 2: wrong key, or the stored value was altered or moved"
        );
        assert!(
            cipher
                .decrypt(&secret("sk_zzzzzzzzzz"), 1, &stored)
                .is_err()
        );
    }

    #[test]
    fn wrong_key_and_tampering_fail() {
        let id = secret("sk_abcdefghij");
        let cipher = SecretCipher::new(&SecretKey::generate().unwrap());
        let other = SecretCipher::new(&SecretKey::generate().unwrap());
        let stored = cipher.encrypt(&id, 1, b"value").unwrap();
        assert!(other.decrypt(&id, 1, &stored).is_err());
        for index in [0, 1, 30, stored.len() - 1] {
            let mut altered = stored.clone();
            altered[index] ^= 1;
            assert!(cipher.decrypt(&id, 1, &altered).is_err(), "byte {index}");
        }
        assert!(cipher.decrypt(&id, 1, &stored[..stored.len() - 1]).is_err());
        assert!(cipher.decrypt(&id, 1, &[]).is_err());
        assert!(cipher.decrypt(&id, 1, &[FORMAT_VERSION; 40]).is_err());
    }

    #[test]
    fn key_parsing() {
        let key =
            SecretKey::from_base64(" AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
        assert_eq!(key.0[31], 31);
        for bad in [
            "",
            "c2hvcnQ=",
            "not base64!",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==",
        ] {
            let error = SecretKey::from_base64(bad).err().unwrap();
            assert!(
                error.to_string().starts_with(
                    "invalid secret key: expected standard base64 of exactly 32 bytes"
                ),
                "{bad}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn key_file_created_once_with_mode_600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("guardrail.sqlite3.key");
        let (first, created) = SecretKey::load_or_create(&path).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (second, created) = SecretKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(first.0, second.0);
        // The file contains the key as base64 text.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(SecretKey::from_base64(&text).unwrap().0, first.0);
    }

    #[test]
    fn key_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.key");
        let error = SecretKey::load(&missing).err().unwrap();
        assert!(
            error
                .to_string()
                .starts_with("cannot read secret key file `"),
            "{error}"
        );
        let garbage = dir.path().join("bad.key");
        std::fs::write(&garbage, "xyz").unwrap();
        assert!(matches!(
            SecretKey::load_or_create(&garbage),
            Err(CryptoError::InvalidKey)
        ));
        let no_dir = dir.path().join("missing-dir").join("k.key");
        let error = SecretKey::load_or_create(&no_dir).err().unwrap();
        assert!(
            error
                .to_string()
                .starts_with("cannot create secret key file `"),
            "{error}"
        );
    }
}
