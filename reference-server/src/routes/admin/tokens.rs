//! Bootstrap tokens: issue (the only time the token is shown), list, revoke.

use actix_web::web::{self, Bytes, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use guardrail_core::guardrail::Guardrails;
use guardrail_core::ids::TokenId;
use guardrail_core::lifetime::Lifetime;
use guardrail_core::token::{
    BootstrapToken, InvalidMachineText, IssueError, RevokeTokenError, TokenRandomness,
    TokenRequest, TokenStatus, issue_token,
};
use zeroize::Zeroizing;

use super::{parse_guardrails, shown, with_vault};
use crate::audit_log;
use crate::bootstrap::commands;
use crate::error::{ApiError, parse_json};
use crate::state::AppState;
use crate::state::{random_bytes, store_error};
use crate::wire::{IssueTokenRequest, IssueTokenResponse, Items, TokenStateView, TokenView};

/// Registers the token routes.
pub fn configure(config: &mut ServiceConfig) {
    config
        .route("/vaults/{vaultId}/temp-tokens", web::post().to(issue))
        .route("/vaults/{vaultId}/temp-tokens", web::get().to(list))
        .route(
            "/vaults/{vaultId}/temp-tokens/{tokenId}",
            web::delete().to(revoke),
        );
}

async fn issue(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let response = with_vault(&state, &request, path.into_inner(), move |state, owner, vault| {
        let body: IssueTokenRequest = parse_json(&body)?;
        let guardrails = match &body.guardrails {
            Some(guardrails) => parse_guardrails(guardrails, "guardrails.")?,
            None => Guardrails::default(),
        };
        let id = random_bytes::<12>()?;
        let secret = Zeroizing::new(random_bytes::<32>()?);
        let now = state.clock.now();
        let request = TokenRequest {
            machine_name: body.name,
            description: body.description,
            machine_lifetime: Lifetime::new(
                body.lifetime.months,
                body.lifetime.days,
                body.lifetime.hours,
            ),
            token_lifetime_hours: body.token_lifetime_hours,
            guardrails,
        };
        let randomness = TokenRandomness {
            id,
            secret: secret.as_ref(),
        };
        let issued =
            issue_token(vault, &owner.id, request, randomness, now).map_err(issue_error)?;
        let commands = commands(
            &vault.id,
            issued.plaintext.expose_secret(),
            &state.settings.public_url,
        )
        .map_err(|error| {
            tracing::error!(%error, "cannot build bootstrap commands");
            ApiError::Internal
        })?;
        let audit = state
            .store
            .insert_token(&issued.token, &issued.event)
            .map_err(store_error)?;
        audit_log::alert(state, &audit);
        tracing::info!(token_id = %issued.token.id, vault_id = %vault.id, "bootstrap token issued");
        Ok(IssueTokenResponse {
            token_id: issued.token.id.clone(),
            token_expires_at: issued.token.expires_at,
            machine_expires_at_preview: issued.machine_expires_at_preview,
            commands,
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(response))
}

fn issue_error(error: IssueError) -> ApiError {
    match &error {
        IssueError::PlanDisallows(_) => ApiError::Forbidden(error.to_string()),
        IssueError::MachineText(text) => {
            let field = match text {
                InvalidMachineText::DescriptionTooLong { .. }
                | InvalidMachineText::DescriptionControlCharacter { .. } => "description",
                _ => "name",
            };
            ApiError::BadRequest(format!("invalid `{field}`: {error}"))
        }
        IssueError::Lifetime(_) => ApiError::BadRequest(format!("invalid `lifetime`: {error}")),
        IssueError::TokenLifetime(_) => {
            ApiError::BadRequest(format!("invalid `tokenLifetimeHours`: {error}"))
        }
        IssueError::Randomness(_) => {
            tracing::error!(%error, "cannot make a bootstrap token");
            ApiError::Internal
        }
        _ => ApiError::BadRequest(error.to_string()),
    }
}

async fn list(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let items = with_vault(&state, &request, path.into_inner(), |state, _, vault| {
        let now = state.clock.now();
        let tokens = state.store.list_tokens(&vault.id).map_err(store_error)?;
        Ok(Items {
            items: tokens.iter().map(|token| token_view(token, now)).collect(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(items))
}

async fn revoke(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (vault, token) = path.into_inner();
    let view = with_vault(&state, &request, vault, move |state, owner, vault| {
        let not_found = || ApiError::NotFound(format!("token `{}` not found", shown(&token)));
        let token_id = token.parse::<TokenId>().map_err(|_| not_found())?;
        let now = state.clock.now();
        let revoked = state
            .store
            .revoke_token(&vault.id, &token_id, &owner.id, now)
            .map_err(|error| match error.domain_error::<RevokeTokenError>() {
                Some(refused) => ApiError::Conflict(refused.to_string()),
                None => store_error(error),
            })?;
        audit_log::alert(state, &revoked.audit);
        Ok(token_view(&revoked.value, now))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

fn token_view(token: &BootstrapToken, now: DateTime<Utc>) -> TokenView {
    TokenView {
        token_id: token.id.clone(),
        name: token.machine_name.clone(),
        state: match token.status(now) {
            TokenStatus::Unused => TokenStateView::Unused,
            TokenStatus::Used => TokenStateView::Used,
            TokenStatus::Revoked => TokenStateView::Revoked,
            TokenStatus::Expired => TokenStateView::Expired,
        },
        token_expires_at: token.expires_at,
        created_at: token.created_at,
    }
}
