//! The audit log, newest first.

use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use guardrail_core::audit::{AuditAction, Severity};
use guardrail_store::AuditQuery;

use super::{shown, with_vault};
use crate::audit_log::entry_view;
use crate::error::ApiError;
use crate::state::{AppState, store_error};
use crate::wire::{AuditQuery as AuditQueryParams, Items};

/// Entries returned when the query sets no `limit`.
pub const DEFAULT_AUDIT_LIMIT: u32 = 100;
/// Most entries one query returns.
pub const MAX_AUDIT_LIMIT: u32 = 1000;

/// Registers the audit route.
pub fn configure(config: &mut ServiceConfig) {
    config.route("/vaults/{vaultId}/audit", web::get().to(query));
}

async fn query(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let params = web::Query::<AuditQueryParams>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .map_err(|error| ApiError::BadRequest(format!("invalid query string: {error}")));
    let items = with_vault(&state, &request, path.into_inner(), move |state, _, vault| {
        let params = params?;
        let action = params
            .action
            .as_deref()
            .map(|text| {
                text.parse::<AuditAction>()
                    .map_err(|error| ApiError::BadRequest(format!("invalid `action`: {error}")))
            })
            .transpose()?;
        let severity = params
            .severity
            .as_deref()
            .map(|text| {
                text.parse::<Severity>()
                    .map_err(|error| ApiError::BadRequest(format!("invalid `severity`: {error}")))
            })
            .transpose()?;
        let since = params
            .since
            .as_deref()
            .map(|text| {
                DateTime::parse_from_rfc3339(text)
                    .map(|instant| instant.with_timezone(&Utc))
                    .map_err(|_| {
                        ApiError::BadRequest(format!(
                            "invalid `since` value `{}`: expected an RFC 3339 instant such as `2026-01-31T09:00:00Z`",
                            shown(text)
                        ))
                    })
            })
            .transpose()?;
        let limit = match params.limit.as_deref() {
            None => DEFAULT_AUDIT_LIMIT,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|limit| (1..=MAX_AUDIT_LIMIT).contains(limit))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "invalid `limit` value `{}`: expected 1 to {MAX_AUDIT_LIMIT}",
                        shown(text)
                    ))
                })?,
        };
        let records = state
            .store
            .query_audit(&AuditQuery {
                vault_id: vault.id.clone(),
                action,
                severity,
                since,
                before: None,
                limit,
            })
            .map_err(store_error)?;
        Ok(Items {
            items: records.iter().map(entry_view).collect(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(items))
}
