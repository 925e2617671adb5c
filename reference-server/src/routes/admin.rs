//! The admin API under `/admin/v1`, authenticated with `Authorization: Bearer <owner key>`.
//!
//! A key acts for one owner and only that owner's vaults: another owner's vault, like a vault
//! that does not exist, is 404. A suspended owner's key gets 403. Bodies are parsed only after
//! the key is checked, so that nobody without a key learns anything from a 400.
//!
//! # Statuses
//!
//! Creating answers 201 with the new resource, changing answers 200 with the resource as it is
//! now, and operations that leave nothing to show (deny, revoke a machine, add a project
//! member, grant a secret, delete a webhook) answer 204. A 400 names the field and the value.
//! A state the change does not apply to (approving an active machine) is 409.
//!
//! With `--test-clock`, every response under `/admin/v1` carries
//! `X-Guardrail-Test-Clock: enabled`.

pub mod audit;
pub mod machines;
pub mod projects;
pub mod secrets;
pub mod test_clock;
pub mod tokens;
pub mod vault;
pub mod webhooks;

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{Condition, DefaultHeaders};
use actix_web::web::{self, ServiceConfig};
use guardrail_core::guardrail::window::weekday_name;
use guardrail_core::guardrail::{CountryAllowlist, Guardrails, IpAllowlist, TimeWindow};
use guardrail_core::ids::VaultId;
use guardrail_core::plan::{Owner, Vault};

use crate::error::ApiError;
use crate::owner_key;
use crate::state::{AppState, store_error};
use crate::wire::{GuardrailsBody, TimeWindowBody};

/// The header that marks admin responses of a server running a test clock.
pub const TEST_CLOCK_HEADER: HeaderName = HeaderName::from_static("x-guardrail-test-clock");

/// Registers the admin scope. The test clock route exists only when `test_clock` is set.
pub fn configure(config: &mut ServiceConfig, test_clock: bool) {
    let marker =
        DefaultHeaders::new().add((TEST_CLOCK_HEADER, HeaderValue::from_static("enabled")));
    config.service(
        web::scope("/admin/v1")
            .wrap(Condition::new(test_clock, marker))
            .configure(tokens::configure)
            .configure(machines::configure)
            .configure(projects::configure)
            .configure(secrets::configure)
            .configure(vault::configure)
            .configure(audit::configure)
            .configure(webhooks::configure)
            .configure(|scope| {
                if test_clock {
                    test_clock::configure(scope);
                }
            })
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::NotFound("route not found".to_owned()))
            })),
    );
}

/// Extracts the owner key from `Authorization: Bearer ...`, if the header has that form.
fn bearer_key(request: &HttpRequest) -> Option<String> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, key) = value.split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then(|| key.to_owned())
}

/// Finds the active owner of the request's key.
///
/// # Errors
///
/// 401 for a missing or unknown key, 403 for a suspended owner.
pub fn authenticate_owner(state: &AppState, key: Option<&str>) -> Result<Owner, ApiError> {
    let key = key.ok_or(ApiError::OwnerKeyRejected)?;
    let owner = state
        .store
        .owner_by_key_hash(&owner_key::hash(key))
        .map_err(store_error)?
        .ok_or(ApiError::OwnerKeyRejected)?;
    if !owner.active {
        return Err(ApiError::Forbidden(format!(
            "owner account `{}` is suspended: ask the server operator to run `guardrail-server vault resume`",
            owner.id
        )));
    }
    Ok(owner)
}

/// Returns `owner`'s vault `vault`, or 404 when it is missing or belongs to someone else.
///
/// # Errors
///
/// 404, or the store's error.
pub fn owned_vault(state: &AppState, owner: &Owner, vault: &str) -> Result<Vault, ApiError> {
    let not_found = || {
        let shown: String = vault
            .chars()
            .take(80)
            .flat_map(char::escape_default)
            .collect();
        ApiError::NotFound(format!("vault `{shown}` not found"))
    };
    let vault_id = vault.parse::<VaultId>().map_err(|_| not_found())?;
    state
        .store
        .get_vault(&vault_id)
        .map_err(store_error)?
        .filter(|found| found.owner_id == owner.id)
        .ok_or_else(not_found)
}

/// Authenticates the owner, loads the vault named in the path and runs `work` with both, in
/// one blocking task.
async fn with_vault<T, F>(
    state: &AppState,
    request: &HttpRequest,
    vault: String,
    work: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&AppState, &Owner, &Vault) -> Result<T, ApiError> + Send + 'static,
{
    let key = bearer_key(request);
    state
        .blocking(move |state| {
            let owner = authenticate_owner(state, key.as_deref())?;
            let vault = owned_vault(state, &owner, &vault)?;
            work(state, &owner, &vault)
        })
        .await
}

/// Authenticates the owner and runs `work`, for routes outside a vault.
async fn with_owner<T, F>(state: &AppState, request: &HttpRequest, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&AppState, &Owner) -> Result<T, ApiError> + Send + 'static,
{
    let key = bearer_key(request);
    state
        .blocking(move |state| {
            let owner = authenticate_owner(state, key.as_deref())?;
            work(state, &owner)
        })
        .await
}

/// Parses guardrails as sent; `field` prefixes each axis in messages (`guardrails.` in a token
/// request, empty in a guardrails update).
///
/// # Errors
///
/// 400 naming the axis and the entry at fault.
pub fn parse_guardrails(body: &GuardrailsBody, field: &str) -> Result<Guardrails, ApiError> {
    let ip_allowlist = body
        .ip_allowlist
        .as_ref()
        .map(|entries| IpAllowlist::parse(entries))
        .transpose()
        .map_err(|error| ApiError::BadRequest(format!("invalid `{field}ipAllowlist`: {error}")))?;
    let countries = body
        .countries
        .as_ref()
        .map(|entries| CountryAllowlist::parse(entries))
        .transpose()
        .map_err(|error| ApiError::BadRequest(format!("invalid `{field}countries`: {error}")))?;
    let time_window = body
        .time_window
        .as_ref()
        .map(|window| TimeWindow::new(&window.start, &window.end, &window.timezone, &window.days))
        .transpose()
        .map_err(|error| ApiError::BadRequest(format!("invalid `{field}timeWindow`: {error}")))?;
    Ok(Guardrails {
        ip_allowlist,
        countries,
        time_window,
    })
}

/// Shows guardrails in their wire form.
pub fn guardrails_body(guardrails: &Guardrails) -> GuardrailsBody {
    GuardrailsBody {
        ip_allowlist: guardrails
            .ip_allowlist
            .as_ref()
            .map(|list| list.entries().iter().map(ToString::to_string).collect()),
        countries: guardrails
            .countries
            .as_ref()
            .map(|list| list.codes().iter().map(ToString::to_string).collect()),
        time_window: guardrails
            .time_window
            .as_ref()
            .map(|window| TimeWindowBody {
                start: window.start().to_string(),
                end: window.end().to_string(),
                timezone: window.timezone().name().to_owned(),
                days: window
                    .days()
                    .days()
                    .map(|day| weekday_name(day).to_owned())
                    .collect(),
            }),
    }
}

/// Escapes and shortens a value for a 400 message.
pub fn shown(value: &str) -> String {
    value
        .chars()
        .take(80)
        .flat_map(char::escape_default)
        .collect()
}

/// Checks a display name (project or secret): trimmed, 1 to 200 characters, no control
/// characters.
///
/// # Errors
///
/// 400 naming `field` and the value.
pub fn check_name(field: &str, name: &str) -> Result<String, ApiError> {
    const MAX_NAME_CHARS: usize = 200;
    let trimmed = name.trim();
    if trimmed.is_empty()
        || trimmed.chars().count() > MAX_NAME_CHARS
        || trimmed.chars().any(char::is_control)
    {
        return Err(ApiError::BadRequest(format!(
            "invalid `{field}` value `{}`: expected 1 to {MAX_NAME_CHARS} characters without control characters",
            shown(name)
        )));
    }
    Ok(trimmed.to_owned())
}
