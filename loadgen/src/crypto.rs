//! This machine's Ed25519 bound: sign-and-verify pairs per second on N threads.
//!
//! A signed read costs one signature on the client and one strict verification on the server.
//! When both run on the same cores, the pairs per second measured here are an upper bound for
//! signed reads per second that no server can pass, whatever its store.

use std::time::{Duration, Instant};

use ed25519_dalek::{Signer as _, SigningKey};
use guardrail_core::request::{Nonce, Timestamp, body_hash, signed_payload};

/// Maximum threads of one measurement.
pub const MAX_THREADS: usize = 256;
/// Maximum duration of one measurement, in seconds.
pub const MAX_SECONDS: u64 = 60;
/// Pairs done between two looks at the clock.
const BATCH: u64 = 64;

/// A measurement outside its bounds, or one that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Too few or too many threads.
    #[error("invalid thread count `{0}`: expected 1 to {MAX_THREADS}")]
    Threads(usize),
    /// Too short or too long.
    #[error("invalid duration `{0}` s: expected 1 to {MAX_SECONDS} s")]
    Seconds(u64),
    /// A signature did not verify, which would make the figure meaningless.
    #[error("a signature made here did not verify: the measurement is void")]
    Verify,
    /// A worker thread panicked.
    #[error("a measuring thread ended abnormally")]
    Thread,
}

/// Counts and times of one measurement.
#[derive(Debug, Clone, Copy)]
pub struct CryptoReport {
    /// Threads that ran.
    pub threads: usize,
    /// Sign-and-verify pairs done by all threads.
    pub pairs: u64,
    /// Wall time of the slowest thread.
    pub elapsed: Duration,
    /// CPU time the threads got, when `/proc` reports it.
    pub cpu: Option<Duration>,
}

impl CryptoReport {
    /// Pairs per second of wall time.
    pub fn pairs_per_second(&self) -> f64 {
        crate::load::per_second(self.pairs, self.elapsed)
    }

    /// Pairs per second of CPU time, which other work on the machine does not change.
    pub fn pairs_per_cpu_second(&self) -> Option<f64> {
        self.cpu
            .filter(|cpu| !cpu.is_zero())
            .map(|cpu| crate::load::per_second(self.pairs, cpu))
    }
}

/// Signs and verifies a payload shaped like a signed read's on `threads` threads for `seconds`
/// seconds.
///
/// # Errors
///
/// [`CryptoError`] for bounds outside 1 to [`MAX_THREADS`] threads and 1 to [`MAX_SECONDS`]
/// seconds, a signature that fails to verify, or a thread that panicked.
pub fn measure(threads: usize, seconds: u64) -> Result<CryptoReport, CryptoError> {
    if threads == 0 || threads > MAX_THREADS {
        return Err(CryptoError::Threads(threads));
    }
    if seconds == 0 || seconds > MAX_SECONDS {
        return Err(CryptoError::Seconds(seconds));
    }
    let duration = Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|index| std::thread::spawn(move || sign_and_verify(index, duration)))
        .collect();
    let mut pairs = 0;
    let mut cpu = Some(Duration::ZERO);
    for worker in workers {
        let (count, spent) = worker.join().map_err(|_| CryptoError::Thread)??;
        pairs += count;
        cpu = cpu.zip(spent).map(|(total, spent)| total + spent);
    }
    Ok(CryptoReport {
        threads,
        pairs,
        elapsed: started.elapsed(),
        cpu,
    })
}

/// Returns the pairs done and the CPU time the thread got.
fn sign_and_verify(
    index: usize,
    duration: Duration,
) -> Result<(u64, Option<Duration>), CryptoError> {
    let cpu_start = crate::cpu::this_thread();
    let mut seed = [7u8; 32];
    seed[0] = u8::try_from(index % 256).unwrap_or(0);
    let key = SigningKey::from_bytes(&seed);
    let verifying = key.verifying_key();
    let hash = body_hash(b"");
    let deadline = Instant::now() + duration;
    let mut pairs: u64 = 0;
    while Instant::now() < deadline {
        for _ in 0..BATCH {
            // A distinct payload each time, of the length a real signed read has.
            let nonce_text = format!("{:0>24}", pairs);
            let nonce = Nonce::parse(nonce_text.as_bytes()).map_err(|_| CryptoError::Verify)?;
            let timestamp =
                Timestamp::from_unix_seconds(1_750_000_000).ok_or(CryptoError::Verify)?;
            let payload =
                signed_payload("GET", "/v1/secret/sk_loadgen0001", timestamp, &nonce, &hash);
            let signature = key.sign(&payload);
            verifying
                .verify_strict(&payload, &signature)
                .map_err(|_| CryptoError::Verify)?;
            pairs += 1;
        }
    }
    let spent = crate::cpu::this_thread()
        .zip(cpu_start)
        .map(|(end, start)| end.saturating_sub(start));
    Ok((pairs, spent))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn bounds_are_enforced() {
        assert_eq!(
            measure(0, 1).unwrap_err().to_string(),
            "invalid thread count `0`: expected 1 to 256"
        );
        assert_eq!(measure(1, 61).unwrap_err(), CryptoError::Seconds(61));
        assert_eq!(measure(1, 0).unwrap_err(), CryptoError::Seconds(0));
    }

    #[test]
    fn one_second_counts_whole_batches() {
        let report = measure(1, 1).unwrap();
        assert_eq!(report.threads, 1);
        assert!(report.pairs >= BATCH);
        assert_eq!(report.pairs % BATCH, 0);
        assert!(report.elapsed >= Duration::from_secs(1));
    }
}
