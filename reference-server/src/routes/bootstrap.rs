//! Temporary-machine bootstrap: the scripts that set a machine up, and its registration.
//!
//! # Token checks
//!
//! A script is served only for a token that could register a machine right now (known, in this
//! vault, unused, not expired), so that an operator who pastes a used or mistyped command sees
//! the failure at once (`curl -f` stops before `sh` runs) instead of after key generation.
//! Serving does not consume the token. Every token failure, here and at registration, answers
//! the same 401 body, and counts as a failed attempt of the source address: three lock the
//! source out (429), which stops token guessing.
//!
//! # Registration answers
//!
//! 201 with the machine; 400 naming the field for a malformed body, public key or host name;
//! 401 for every token failure; 403 with the reason when the vault's plan no longer allows
//! temporary machines or its machine limit is reached (the token stays unused).

use actix_web::http::header;
use actix_web::web::{self, Bytes, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use guardrail_core::ids::VaultId;
use guardrail_core::lockout::{LockStatus, LockoutKey, check_before_evaluation};
use guardrail_core::machine::{
    MachinePublicKey, RegistrationError, register_machine as core_register,
};
use guardrail_core::token::{RejectionReason, TokenPlaintext, TokenRejected, check_redemption};
use guardrail_store::StoreError;
use std::net::IpAddr;
use std::time::Duration;

use crate::audit_log;
use crate::bootstrap::{render_ps1, render_sh};
use crate::clock::transport_now;
use crate::error::{ApiError, parse_json};
use crate::routes::machine_api::record_failure;
use crate::state::{AppState, random_bytes, store_error};
use crate::wire::{RegisterRequest, RegisterResponse};

/// Longest accepted host name, in characters.
pub const MAX_HOSTNAME_CHARS: usize = 255;

/// Registers the bootstrap routes.
pub fn configure(config: &mut ServiceConfig) {
    config
        .route(
            "/v1/{vaultId}/temp-bootstrap/register",
            web::post().to(register),
        )
        .route(
            "/v1/{vaultId}/temp-bootstrap/{token}/ps",
            web::get().to(powershell_script),
        )
        .route(
            "/v1/{vaultId}/temp-bootstrap/{token}",
            web::get().to(sh_script),
        );
}

#[derive(Clone, Copy)]
enum Script {
    Sh,
    PowerShell,
}

async fn sh_script(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    serve_script(&state, &request, path.into_inner(), Script::Sh).await
}

async fn powershell_script(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    serve_script(&state, &request, path.into_inner(), Script::PowerShell).await
}

async fn serve_script(
    state: &AppState,
    request: &HttpRequest,
    (vault, token): (String, String),
    script: Script,
) -> Result<HttpResponse, ApiError> {
    let source = client_address(state, request);
    let (vault_id, body) = state
        .blocking(move |state| {
            check_lockout(state, source)?;
            let now = state.clock.now();
            let checked = check_token(state, &vault, &token, now);
            let vault_id = match checked {
                Ok(vault_id) => vault_id,
                Err(reason) => return Err(token_failure(state, source, reason)),
            };
            let public_url = &state.settings.public_url;
            let rendered = match script {
                Script::Sh => render_sh(&vault_id, &token, public_url),
                Script::PowerShell => render_ps1(&vault_id, &token, public_url),
            };
            let body = rendered.map_err(|error| {
                tracing::error!(%error, "cannot render a bootstrap script");
                ApiError::Internal
            })?;
            Ok((vault_id, body))
        })
        .await?;
    tracing::info!(%vault_id, "bootstrap script served");
    let content_type = match script {
        Script::Sh => "text/x-shellscript; charset=utf-8",
        Script::PowerShell => "text/plain; charset=utf-8",
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

/// Checks that `token` could register a machine in `vault` at `now`.
fn check_token(
    state: &AppState,
    vault: &str,
    token: &str,
    now: DateTime<Utc>,
) -> Result<VaultId, RejectionReason> {
    let plaintext = TokenPlaintext::parse(token).map_err(|_| RejectionReason::Malformed)?;
    let vault_id = vault
        .parse::<VaultId>()
        .map_err(|_| RejectionReason::WrongVault)?;
    let stored = state
        .store
        .find_token_by_hash(&plaintext.hash())
        .map_err(|error| {
            tracing::warn!(%error, "cannot look a bootstrap token up");
            RejectionReason::Unknown
        })?;
    check_redemption(stored, &plaintext, &vault_id, now)
        .map(|_| vault_id)
        .map_err(|rejected| rejected.reason())
}

async fn register(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let source = client_address(&state, &request);
    let vault = path.into_inner();
    let registration: RegisterRequest = parse_json(&body)?;
    let public_key = MachinePublicKey::from_base64(&registration.public_key)
        .map_err(|error| ApiError::BadRequest(format!("invalid `publicKey`: {error}")))?;
    let hostname = check_hostname(registration.hostname.as_deref())?;
    let token = registration.token;

    let response = state
        .blocking(move |state| {
            check_lockout(state, source)?;
            let now = state.clock.now();
            let plaintext = TokenPlaintext::parse(&token)
                .map_err(|_| token_failure(state, source, RejectionReason::Malformed))?;
            let vault_id = vault
                .parse::<VaultId>()
                .map_err(|_| token_failure(state, source, RejectionReason::WrongVault))?;
            let machine_id_bytes = random_bytes::<16>()?;

            let registered = state.store.register_machine_with(&plaintext.hash(), &mut |context| {
                let redeemable = check_redemption(Some(context.token.clone()), &plaintext, &vault_id, now)
                    .map_err(StoreError::domain)?;
                let mut registration = core_register(
                    redeemable,
                    public_key.clone(),
                    context.vault,
                    context.machines_in_vault,
                    machine_id_bytes,
                    now,
                )
                .map_err(StoreError::domain)?;
                registration.event.source_ip = source;
                if let (Some(name), Some(detail)) =
                    (&hostname, registration.event.detail.as_object_mut())
                {
                    detail.insert("hostname".to_owned(), name.clone().into());
                }
                Ok(registration)
            });

            let machine = match registered {
                Ok(registered) => {
                    audit_log::alert(state, &registered.audit);
                    registered.value
                }
                Err(StoreError::NotFound(missing)) if missing.kind() == "token" => {
                    return Err(token_failure(state, source, RejectionReason::Unknown));
                }
                Err(StoreError::Conflict(conflict)) => {
                    // Another registration used the token first.
                    tracing::info!(%conflict, "registration lost a race for its token");
                    return Err(token_failure(state, source, RejectionReason::Used));
                }
                Err(error) => {
                    if let Some(rejected) = error.domain_error::<TokenRejected>() {
                        return Err(token_failure(state, source, rejected.reason()));
                    }
                    if let Some(refused) = error.domain_error::<RegistrationError>() {
                        return Err(registration_refused(refused));
                    }
                    return Err(store_error(error));
                }
            };
            tracing::info!(machine_id = %machine.id, vault_id = %machine.vault_id, "temporary machine registered, pending approval");
            Ok(RegisterResponse {
                machine_id: machine.id,
                machine_name: machine.name,
                vault_id: machine.vault_id,
                expires_at: machine.expires_at,
                api_url: state.settings.public_url.as_str().to_owned(),
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(response))
}

fn registration_refused(refused: &RegistrationError) -> ApiError {
    match refused {
        RegistrationError::VaultMismatch { .. } => {
            tracing::error!(error = %refused, "registration loaded the wrong vault");
            ApiError::Unauthenticated
        }
        _ => ApiError::Forbidden(refused.to_string()),
    }
}

/// Trims and checks the optional host name, which goes into the audit entry.
fn check_hostname(hostname: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(name) = hostname.map(str::trim).filter(|name| !name.is_empty()) else {
        return Ok(None);
    };
    let chars = name.chars().count();
    if chars > MAX_HOSTNAME_CHARS || name.chars().any(char::is_control) {
        let shown: String = name
            .chars()
            .take(64)
            .flat_map(char::escape_default)
            .collect();
        return Err(ApiError::BadRequest(format!(
            "invalid `hostname` value `{shown}`: expected at most {MAX_HOSTNAME_CHARS} characters without control characters"
        )));
    }
    Ok(Some(name.to_owned()))
}

fn client_address(state: &AppState, request: &HttpRequest) -> Option<IpAddr> {
    match state.client_addresses.resolve_request(request) {
        Ok(address) => Some(address),
        Err(reason) => {
            tracing::info!(%reason, "client address undetermined");
            None
        }
    }
}

/// Returns 429 when the source is locked out after failed token attempts.
fn check_lockout(state: &AppState, source: Option<IpAddr>) -> Result<(), ApiError> {
    let now = transport_now();
    let counter = state
        .store
        .lockout_state(&LockoutKey::Source(source), now)
        .map_err(store_error)?;
    let lookup = |_: &LockoutKey| counter.as_ref();
    if let Some((
        _,
        LockStatus::Locked {
            retry_after_seconds,
        },
    )) = check_before_evaluation(source, None, lookup, now)
    {
        return Err(ApiError::RateLimited {
            retry_after: Duration::from_secs(retry_after_seconds),
        });
    }
    Ok(())
}

/// Counts a token failure against the source and returns the one generic 401.
fn token_failure(state: &AppState, source: Option<IpAddr>, reason: RejectionReason) -> ApiError {
    tracing::info!(
        reason = reason.as_str(),
        ?source,
        "bootstrap token rejected"
    );
    if let Err(error) = record_failure(
        state.store.as_ref(),
        state,
        &LockoutKey::Source(source),
        transport_now(),
    ) {
        tracing::warn!(%error, "cannot count a failed token attempt");
    }
    ApiError::Unauthenticated
}
