//! The Guardrail reference server: the parts that wire `guardrail-core` and `guardrail-store`
//! to HTTP with actix-web.
//!
//! | module | what it does |
//! | --- | --- |
//! | [`cli`] | the command line as clap parses it |
//! | [`config`] | `serve` settings merged from flags, environment and a TOML file, validated |
//! | [`client_addr`] | the client address of a request, with trusted proxies |
//! | [`bootstrap`] | the bootstrap scripts served to new temporary machines |
//! | [`crypto`] | encryption of secret values at rest |
//! | [`webhook`] | webhook URL checks, signatures and background delivery |
//! | [`telemetry`] | logging, request ids, metrics and health routes |
//! | [`clock`] | the policy clock and the test clock |
//! | [`wire`] | request and response bodies |
//! | [`error`] | the API error and its mapping to HTTP |
//! | [`owner_key`] | owner keys of the admin API |
//! | [`state`] | the state shared by the routes |
//! | [`audit_log`] | audit entries, coalesced blocks and alerts |
//! | [`routes`] | the HTTP routes by resource |
//! | [`sweeper`] | the background sweeper |
//! | [`vault_admin`] | the operator's vault commands |

pub mod audit_log;
pub mod bootstrap;
pub mod cli;
pub mod client_addr;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod error;
pub mod owner_key;
pub mod routes;
pub mod state;
pub mod sweeper;
pub mod telemetry;
pub mod vault_admin;
pub mod webhook;
pub mod wire;

#[cfg(test)]
mod test_http;
