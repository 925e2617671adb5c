//! The bootstrap scripts served to new temporary machines, and the commands that fetch them.
//!
//! The POSIX `sh` script (`scripts/bootstrap.sh`) and the PowerShell script
//! (`scripts/bootstrap.ps1`) are templates compiled into the binary. Rendering fills in the
//! vault id, the token and the public URL as single-quoted string literals. Each value is
//! checked first: the token must be URL-safe base64 and the other two are already validated
//! types, so no value can end the quoting, and printable ASCII is all that reaches a script
//! (PowerShell also treats typographic quotes as quotes).
//!
//! A rendered script holds the token, so it is a secret: it is served once per request and
//! never logged.

use guardrail_core::ids::VaultId;

use crate::config::PublicUrl;
use crate::wire::BootstrapCommands;

/// The POSIX `sh` template.
pub const SH_TEMPLATE: &str = include_str!("../scripts/bootstrap.sh");
/// The PowerShell template.
///
/// TODO: run it in a test under PowerShell; the tests here only render it, since no PowerShell is
/// installed on the build machines.
pub const PS1_TEMPLATE: &str = include_str!("../scripts/bootstrap.ps1");

/// Longest token accepted for rendering.
pub const MAX_TOKEN_LEN: usize = 256;

const VAULT_PLACEHOLDER: &str = "__GUARDRAIL_VAULT_ID__";
const TOKEN_PLACEHOLDER: &str = "__GUARDRAIL_TOKEN__";
const URL_PLACEHOLDER: &str = "__GUARDRAIL_API_URL__";

/// A value that cannot go into a script. The token itself is never part of the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The token is empty, too long, or has characters outside URL-safe base64.
    #[error("invalid bootstrap token: expected 1 to {MAX_TOKEN_LEN} URL-safe base64 characters")]
    InvalidToken,
    /// The vault id or URL contains a character other than printable ASCII.
    #[error("invalid {0} for a bootstrap script: only printable ASCII is allowed")]
    NotPrintable(&'static str),
}

fn check_token(token: &str) -> Result<(), RenderError> {
    let valid = !token.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(RenderError::InvalidToken)
    }
}

fn check_printable(what: &'static str, value: &str) -> Result<(), RenderError> {
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Ok(())
    } else {
        Err(RenderError::NotPrintable(what))
    }
}

/// Quotes a value for POSIX sh: `'...'`, with each `'` written as `'\''`.
fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Quotes a value for PowerShell: `'...'`, with each `'` doubled.
fn ps_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn render(
    template: &str,
    quote: fn(&str) -> String,
    vault: &VaultId,
    token: &str,
    api_url: &PublicUrl,
) -> Result<String, RenderError> {
    check_token(token)?;
    check_printable("vault id", vault.as_str())?;
    check_printable("public URL", api_url.as_str())?;
    Ok(template
        .replacen(VAULT_PLACEHOLDER, &quote(vault.as_str()), 1)
        .replacen(TOKEN_PLACEHOLDER, &quote(token), 1)
        .replacen(URL_PLACEHOLDER, &quote(api_url.as_str()), 1))
}

/// Renders the POSIX `sh` bootstrap script.
///
/// # Errors
///
/// [`RenderError`] when a value fails its check.
pub fn render_sh(vault: &VaultId, token: &str, api_url: &PublicUrl) -> Result<String, RenderError> {
    render(SH_TEMPLATE, sh_quote, vault, token, api_url)
}

/// Renders the PowerShell bootstrap script.
///
/// # Errors
///
/// [`RenderError`] when a value fails its check.
pub fn render_ps1(
    vault: &VaultId,
    token: &str,
    api_url: &PublicUrl,
) -> Result<String, RenderError> {
    render(PS1_TEMPLATE, ps_quote, vault, token, api_url)
}

/// Builds the one-line commands shown at issuance. The Linux command uses `curl -f`, so that an
/// error answer (a used or revoked token) is not piped into `sh`.
///
/// # Errors
///
/// [`RenderError::InvalidToken`] when the token fails its check.
pub fn commands(
    vault: &VaultId,
    token: &str,
    api_url: &PublicUrl,
) -> Result<BootstrapCommands, RenderError> {
    check_token(token)?;
    let script_url = format!("{api_url}/v1/{vault}/temp-bootstrap/{token}");
    Ok(BootstrapCommands {
        linux: format!("curl -fsSL {} | sh", sh_quote(&script_url)),
        windows: format!("iex (irm \"{script_url}/ps\")"),
    })
}

#[cfg(test)]
mod tests;
