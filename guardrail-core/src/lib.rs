//! The Guardrail engine: temporary machine identities, their lifecycle and the nine-step
//! evaluation of every signed request.
//!
//! The crate is pure. It performs no I/O, reads no clock and draws no random numbers: every
//! operation takes `now` (and random bytes where it needs them) from the caller and returns the
//! new state together with the audit events it caused. Storage, HTTP and logging live in the
//! crates around it.
//!
//! # Evaluating a request
//!
//! A server handles a signed machine request in four moves:
//!
//! 1. Parse it with [`SignedRequest::parse`]. Parsing never fails as a whole; each header keeps
//!    its own result.
//! 2. Canonicalise the client address and check lockouts with
//!    [`check_before_evaluation`](lockout::check_before_evaluation). A locked source, or a locked
//!    machine and source pair, gets 429 with `Retry-After` and is not evaluated. This check is
//!    the caller's job, because the counters live in the store.
//! 3. Load the machine named by [`SignedRequest::machine_id`], with its vault and owner, and call
//!    [`evaluate()`].
//! 4. Persist the [`Decision`]'s audit events, increment the counter it names with
//!    [`FailureCounter::record_failure`](lockout::FailureCounter::record_failure), and answer
//!    with its status and client message.
//!
//! # Evaluation order
//!
//! The steps run in a fixed order and the first failure decides: (1) the vault owner is active,
//! (2) the vault-wide IP allowlist, (3) the machine exists and is active, (4) it has not expired,
//! (5) its IP allowlist, (6) its countries, (7) its time window, (8) signature, timestamp and
//! nonce, (9) route authorization. Steps 1 to 4 and 8 answer 401 with one body
//! ([`AUTHENTICATION_FAILED`](evaluate::AUTHENTICATION_FAILED)), so the answer does not tell
//! whether a machine id exists, is pending or has expired; the audit entry keeps the reason.
//! Steps 5 to 7 answer 403, and step 9 answers 403 or 404 as the route authorizer decides.
//!
//! A missing or malformed `X-Machine-Id` fails step 3 as an unknown machine. Every other
//! malformed header fails step 8, after the guardrails ran. When the machine is unknown there
//! is no vault to check at steps 1 and 2 and none to file an audit entry under, so the decision
//! carries no audit event and only the source address counter is incremented.
//!
//! # Two clocks
//!
//! [`evaluate()`] takes a policy clock `now` for expiry and the time window, and a transport clock
//! `transport_now` for the timestamp's freshness and nonce retention. They differ only when a
//! test clock moves the policy clock: real clients sign with real time.
//!
//! # Time windows and daylight saving time
//!
//! Step 7 converts `now` to wall-clock time in the window's zone and compares that. On the
//! spring-forward day a window inside the skipped hour never opens; on the fall-back day a
//! window over the repeated hour is open for both of its real hours.
//!
//! # IPv4-mapped addresses
//!
//! [`evaluate()`] turns a source in IPv4-mapped IPv6 form (`::ffff:a.b.c.d`) into the IPv4 address
//! it carries before any step runs, so the vault allowlist, the machine allowlist, the country
//! lookup, the lockout key and the audit entry all see `a.b.c.d`. The returned decision carries
//! that canonical address.
//!
//! # Undetermined sources and countries
//!
//! A source is undetermined when a trusted proxy sent no parseable client address; the caller
//! passes `None` and never the proxy's own address. An undetermined source fails every address
//! rule that applies (steps 2 and 5) and makes the country undetermined. With the country axis
//! enabled, an undetermined country (no address, a private or reserved address, an address the
//! database lacks, or a code that is not a country) fails step 6 with the same audit action as a
//! mismatch, and the reason reads `country undetermined`. With an axis off, an undetermined
//! source is not checked by it.
//!
//! # Guardrails run before the signature
//!
//! Steps 5 to 7 run before step 8, so anyone who knows a machine id can provoke
//! `temp_machine_blocked` entries from outside its allowlist without holding its key. Two rules
//! contain that:
//!
//! - Guardrail failures count against the pair of machine and source address
//!   ([`LockoutKey::MachineSource`](lockout::LockoutKey::MachineSource)), so an outsider locks
//!   out only their own address for that machine, and the real machine keeps working.
//! - Repeated identical blocks (same machine, source, axis and reason) within a short period fold
//!   into one audit entry with a count ([`coalesce_block`](lockout::coalesce_block)), so a flood
//!   does not flood the audit log or the alerts subscribed to it.
//!
//! # What is atomic where
//!
//! The core holds no state. The store makes these operations atomic: recording a nonce
//! ([`NonceStore::insert_if_absent`](request::NonceStore::insert_if_absent), which also fails
//! closed when full), updating a failure counter, and folding a block into a coalesced audit
//! entry. The nonce store is called only after the signature and the timestamp passed, so
//! a client without the key cannot fill it. When it cannot decide, the request fails with 503 and no
//! counter is incremented.
//!
//! # Bounded state
//!
//! Failure counters and coalesced blocks are keyed by values an attacker chooses. The caller
//! bounds both tables and drops the entries that
//! [`FailureCounter::is_expired`](lockout::FailureCounter::is_expired) and
//! [`RecentBlock::is_expired`](lockout::RecentBlock::is_expired) report.

#![forbid(unsafe_code)]

pub mod audit;
pub mod evaluate;
pub mod extension;
pub mod guardrail;
pub mod ids;
pub mod lifetime;
pub mod lockout;
pub mod machine;
pub mod plan;
pub mod request;
pub mod sweep;
pub mod token;

pub use evaluate::{Decision, Evaluation, evaluate, evaluate_guardrails};
pub use request::SignedRequest;
