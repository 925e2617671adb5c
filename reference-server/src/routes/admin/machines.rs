//! Machines: list and show, lifecycle, extensions, guardrails and revocation.

use actix_web::web::{self, Bytes, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use guardrail_core::audit::AuditAction;
use guardrail_core::extension::{ExtendError, ExtendRequest, ExtensionChain, RevertError};
use guardrail_core::ids::MachineId;
use guardrail_core::machine::{Machine, MachineState};
use guardrail_core::plan::{Owner, Vault};
use guardrail_store::{Audited, StoreError};

use super::{guardrails_body, parse_guardrails, shown, with_vault};
use crate::audit_log;
use crate::error::{ApiError, parse_json};
use crate::state::{AppState, store_error};
use crate::wire::{
    ExtendRequest as ExtendBody, ExtensionView, GuardrailsBody, Items, MachineKindView,
    MachineStateView, MachineView,
};

/// Registers the machine routes.
pub fn configure(config: &mut ServiceConfig) {
    config
        .route("/vaults/{vaultId}/machines", web::get().to(list))
        .route(
            "/vaults/{vaultId}/machines/{machineId}",
            web::get().to(show),
        )
        .route(
            "/vaults/{vaultId}/machines/{machineId}",
            web::delete().to(revoke),
        )
        .route(
            "/vaults/{vaultId}/machines/{machineId}/approve",
            web::post().to(approve),
        )
        .route(
            "/vaults/{vaultId}/machines/{machineId}/deny",
            web::post().to(deny),
        )
        .route(
            "/vaults/{vaultId}/machines/{machineId}/enable",
            web::post().to(enable),
        )
        .route(
            "/vaults/{vaultId}/machines/{machineId}/disable",
            web::post().to(disable),
        )
        .route(
            "/vaults/{vaultId}/machines/{machineId}/extensions",
            web::post().to(extend),
        )
        .route(
            "/vaults/{vaultId}/machines/{machineId}/extensions/revert",
            web::post().to(revert),
        )
        .route(
            "/vaults/{vaultId}/machines/{machineId}/guardrails",
            web::put().to(set_guardrails),
        );
}

fn machine_id(text: &str) -> Result<MachineId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::NotFound(format!("machine `{}` not found", shown(text))))
}

/// Builds the admin view of a machine at `now`.
pub fn machine_view(machine: &Machine, chain: &ExtensionChain, now: DateTime<Utc>) -> MachineView {
    MachineView {
        machine_id: machine.id,
        name: machine.name.clone(),
        kind: MachineKindView::Temporary,
        state: match machine.status(now) {
            MachineState::Pending => MachineStateView::Pending,
            MachineState::Active => MachineStateView::Active,
            MachineState::Disabled => MachineStateView::Disabled,
            MachineState::Expired => MachineStateView::Expired,
        },
        created_at: machine.created_at,
        expires_at: machine.expires_at,
        guardrails: guardrails_body(&machine.guardrails),
        extensions: chain
            .extensions()
            .iter()
            .map(|extension| ExtensionView {
                previous_expires_at: extension.previous_expires_at,
                new_expires_at: extension.new_expires_at,
                applied_by: extension.applied_by.to_string(),
                applied_at: extension.applied_at,
                reason: extension.reason.clone(),
                reverted: extension.reverted,
            })
            .collect(),
    }
}

fn view_of(state: &AppState, machine: &Machine) -> Result<MachineView, ApiError> {
    let chain = state
        .store
        .extension_chain(&machine.id)
        .map_err(store_error)?;
    Ok(machine_view(machine, &chain, state.clock.now()))
}

async fn list(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let items = with_vault(&state, &request, path.into_inner(), |state, _, vault| {
        let machines = state.store.list_machines(&vault.id).map_err(store_error)?;
        let items = machines
            .iter()
            .map(|machine| view_of(state, machine))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Items { items })
    })
    .await?;
    Ok(HttpResponse::Ok().json(items))
}

async fn show(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (vault, machine) = path.into_inner();
    let view = with_vault(&state, &request, vault, move |state, _, vault| {
        let id = machine_id(&machine)?;
        let found = state
            .store
            .get_machine(&vault.id, &id)
            .map_err(store_error)?
            .ok_or_else(|| ApiError::NotFound(format!("machine `{id}` not found")))?;
        view_of(state, &found)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A lifecycle change through one of the store's provided methods.
type Transition = fn(
    &AppState,
    &Vault,
    &MachineId,
    &Owner,
    DateTime<Utc>,
) -> Result<Audited<Machine>, StoreError>;

async fn transition(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    change: Transition,
    action: AuditAction,
) -> Result<Option<MachineView>, ApiError> {
    let (vault, machine) = path.into_inner();
    with_vault(&state, &request, vault, move |state, owner, vault| {
        let id = machine_id(&machine)?;
        let now = state.clock.now();
        let changed = change(state, vault, &id, owner, now).map_err(store_error)?;
        audit_log::alert(state, &changed.audit);
        tracing::info!(machine_id = %id, action = action.as_str(), "machine changed by its owner");
        match action {
            AuditAction::MachineDeny | AuditAction::MachineRevoke => Ok(None),
            _ => view_of(state, &changed.value).map(Some),
        }
    })
    .await
}

fn respond(view: Option<MachineView>) -> HttpResponse {
    match view {
        Some(view) => HttpResponse::Ok().json(view),
        None => HttpResponse::NoContent().finish(),
    }
}

async fn approve(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let change: Transition =
        |state, vault, id, owner, now| state.store.approve_machine(&vault.id, id, &owner.id, now);
    transition(state, request, path, change, AuditAction::MachineApprove)
        .await
        .map(respond)
}

async fn deny(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let change: Transition =
        |state, vault, id, owner, now| state.store.deny_machine(&vault.id, id, &owner.id, now);
    transition(state, request, path, change, AuditAction::MachineDeny)
        .await
        .map(respond)
}

async fn enable(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let change: Transition =
        |state, vault, id, owner, now| state.store.enable_machine(&vault.id, id, &owner.id, now);
    transition(state, request, path, change, AuditAction::MachineEnable)
        .await
        .map(respond)
}

async fn disable(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let change: Transition =
        |state, vault, id, owner, now| state.store.disable_machine(&vault.id, id, &owner.id, now);
    transition(state, request, path, change, AuditAction::MachineDisable)
        .await
        .map(respond)
}

async fn revoke(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let change: Transition =
        |state, vault, id, owner, now| state.store.revoke_machine(&vault.id, id, &owner.id, now);
    transition(state, request, path, change, AuditAction::MachineRevoke)
        .await
        .map(respond)
}

async fn extend(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let (vault, machine) = path.into_inner();
    let view = with_vault(&state, &request, vault, move |state, owner, vault| {
        let id = machine_id(&machine)?;
        let body: ExtendBody = parse_json(&body)?;
        let request = ExtendRequest {
            new_expires_at: body.new_expires_at,
            reason: body.reason,
            applied_by: owner.id.clone(),
        };
        let now = state.clock.now();
        let extended = state
            .store
            .extend_machine(&vault.id, &id, &request, now)
            .map_err(|error| match error.domain_error::<ExtendError>() {
                Some(refused @ (ExtendError::NotLater { .. } | ExtendError::BeyondCap { .. })) => {
                    ApiError::BadRequest(format!("invalid `newExpiresAt`: {refused}"))
                }
                Some(refused @ ExtendError::ReasonTooLong { .. }) => {
                    ApiError::BadRequest(format!("invalid `reason`: {refused}"))
                }
                _ => store_error(error),
            })?;
        audit_log::alert(state, &extended.audit);
        let (machine, chain) = extended.value;
        Ok(machine_view(&machine, &chain, now))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn revert(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (vault, machine) = path.into_inner();
    let view = with_vault(&state, &request, vault, move |state, owner, vault| {
        let id = machine_id(&machine)?;
        let now = state.clock.now();
        let reverted = state
            .store
            .revert_extension(&vault.id, &id, &owner.id, now)
            .map_err(|error| match error.domain_error::<RevertError>() {
                Some(refused) => ApiError::Conflict(refused.to_string()),
                None => store_error(error),
            })?;
        audit_log::alert(state, &reverted.audit);
        let (machine, chain) = reverted.value;
        Ok(machine_view(&machine, &chain, now))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn set_guardrails(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let (vault, machine) = path.into_inner();
    let view = with_vault(&state, &request, vault, move |state, owner, vault| {
        let id = machine_id(&machine)?;
        let body: GuardrailsBody = parse_json(&body)?;
        let guardrails = parse_guardrails(&body, "")?;
        let now = state.clock.now();
        let updated = state
            .store
            .set_guardrails(&vault.id, &id, &guardrails, &owner.id, now)
            .map_err(store_error)?;
        audit_log::alert(state, &updated.audit);
        view_of(state, &updated.value)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
