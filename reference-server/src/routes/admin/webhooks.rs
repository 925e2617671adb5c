//! Alert subscriptions. A subscription without actions gets `temp_machine_blocked`, the action
//! subscribed by default.

use actix_web::web::{self, Bytes, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use guardrail_core::audit::AuditAction;
use guardrail_store::{NewWebhook, WebhookId, WebhookSubscription};

use super::{shown, with_vault};
use crate::audit_log::seal_webhook_secret;
use crate::error::{ApiError, parse_json};
use crate::state::{AppState, store_error};
use crate::webhook::WebhookUrl;
use crate::wire::{Items, WebhookRequest, WebhookView};

/// Longest accepted webhook secret, in bytes.
pub const MAX_WEBHOOK_SECRET_BYTES: usize = 256;

/// Registers the webhook routes.
pub fn configure(config: &mut ServiceConfig) {
    config
        .route("/vaults/{vaultId}/webhooks", web::post().to(create))
        .route("/vaults/{vaultId}/webhooks", web::get().to(list))
        .route(
            "/vaults/{vaultId}/webhooks/{webhookId}",
            web::delete().to(delete),
        );
}

fn view(subscription: &WebhookSubscription) -> WebhookView {
    WebhookView {
        webhook_id: subscription.id.0,
        url: subscription.url.clone(),
        actions: subscription
            .actions
            .iter()
            .map(|action| action.as_str().to_owned())
            .collect(),
        created_at: subscription.created_at,
    }
}

async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let created = with_vault(
        &state,
        &request,
        path.into_inner(),
        move |state, _, vault| {
            let body: WebhookRequest = parse_json(&body)?;
            let url = WebhookUrl::parse(&body.url, state.settings.allow_private_webhooks)
                .map_err(|error| ApiError::BadRequest(format!("invalid `url`: {error}")))?;
            let mut actions = body
                .actions
                .iter()
                .map(|text| {
                    text.parse::<AuditAction>().map_err(|error| {
                        ApiError::BadRequest(format!("invalid `actions`: {error}"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if actions.is_empty() {
                actions.push(AuditAction::TempMachineBlocked);
            }
            actions.dedup();
            if body.secret.is_empty() || body.secret.len() > MAX_WEBHOOK_SECRET_BYTES {
                return Err(ApiError::BadRequest(format!(
                    "invalid `secret`: expected 1 to {MAX_WEBHOOK_SECRET_BYTES} bytes, got {}",
                    body.secret.len()
                )));
            }
            let secret =
                seal_webhook_secret(&state.cipher, body.secret.as_bytes()).map_err(|error| {
                    tracing::error!(%error, "cannot encrypt a webhook secret");
                    ApiError::Internal
                })?;
            let subscription = state
                .store
                .create_webhook(&NewWebhook {
                    vault_id: vault.id.clone(),
                    url: url.as_str().to_owned(),
                    actions,
                    secret,
                    created_at: state.clock.now(),
                })
                .map_err(store_error)?;
            tracing::info!(vault_id = %vault.id, host = url.host(), "webhook subscribed");
            Ok(view(&subscription))
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(created))
}

async fn list(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let items = with_vault(&state, &request, path.into_inner(), |state, _, vault| {
        let subscriptions = state.store.list_webhooks(&vault.id).map_err(store_error)?;
        Ok(Items {
            items: subscriptions.iter().map(view).collect(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(items))
}

async fn delete(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (vault, webhook) = path.into_inner();
    with_vault(&state, &request, vault, move |state, _, vault| {
        let id = webhook
            .parse::<i64>()
            .map_err(|_| ApiError::NotFound(format!("webhook `{}` not found", shown(&webhook))))?;
        state
            .store
            .delete_webhook(&vault.id, WebhookId(id))
            .map_err(store_error)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
