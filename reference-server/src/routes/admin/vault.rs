//! The vault-wide IP allowlist (step 2 of the evaluation).

use actix_web::web::{self, Bytes, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use guardrail_core::guardrail::IpAllowlist;

use super::with_vault;
use crate::error::{ApiError, parse_json};
use crate::state::{AppState, store_error};
use crate::wire::VaultAllowlistRequest;

/// Registers the vault routes.
pub fn configure(config: &mut ServiceConfig) {
    config.route(
        "/vaults/{vaultId}/ip-allowlist",
        web::put().to(set_allowlist),
    );
}

async fn set_allowlist(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let shown = with_vault(&state, &request, path.into_inner(), move |state, owner, vault| {
        let body: VaultAllowlistRequest = parse_json(&body)?;
        let allowlist = body
            .cidrs
            .as_ref()
            .map(|entries| IpAllowlist::parse_allow_empty(entries))
            .transpose()
            .map_err(|error| ApiError::BadRequest(format!("invalid `cidrs`: {error}")))?;
        state
            .store
            .set_vault_ip_allowlist(&vault.id, allowlist.as_ref())
            .map_err(store_error)?;
        tracing::info!(vault_id = %vault.id, owner_id = %owner.id, enabled = allowlist.is_some(), "vault IP allowlist replaced");
        Ok(VaultAllowlistRequest {
            cidrs: allowlist.map(|list| list.entries().iter().map(ToString::to_string).collect()),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(shown))
}
