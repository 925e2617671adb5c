//! The machine API that SikkerKey's official clients call, every request signed by a machine.
//!
//! Each handler hands its route to [`serve`], which authenticates the request through the nine
//! steps ([`authenticate`]) and runs the handler's work with the machine only when every step
//! passed. Both run in one blocking task, because the store is synchronous.
//!
//! # Reading rules
//!
//! A machine may read a secret when it has a grant on it. Listing or exporting one project also
//! requires membership of that project. A secret of another vault does not exist for the
//! machine (404).
//!
//! # Poll
//!
//! A watched secret is `changed` when its current version is newer than the version the machine
//! last read. A secret the machine never read has no such version and is not reported. A
//! secret that no longer exists, or a watched id that cannot be a secret id, is `deleted`; a
//! secret the machine holds no grant on any more is `access_denied`.

mod authenticate;

use std::collections::BTreeMap;

use actix_web::web::{self, Bytes, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use guardrail_core::audit::{Actor, AuditAction, AuditEvent, Target};
use guardrail_core::evaluate::{MachineRoute, NOT_FOUND};
use guardrail_core::ids::{ProjectId, SecretId};
use guardrail_core::machine::Machine;
use guardrail_store::{SecretRecord, SecretValueType};
use serde::Serialize;

pub use authenticate::{Authenticated, authenticate, record_failure};

use crate::audit_log;
use crate::error::{ApiError, parse_json};
use crate::state::{AppState, store_error};
use crate::wire::{
    CliProject, CliProjectsResponse, CliSecret, CliSecretsResponse, ExportRequest, ExportResponse,
    ExportedSecret, MAX_POLL_WATCH, PollChange, PollRequest, PollResponse, PollStatus,
    ProjectFilterRequest, SecretKind, SecretListResponse, SecretSummary, SecretValueResponse,
};

/// Registers the machine API routes.
pub fn configure(config: &mut ServiceConfig) {
    config
        .route("/v1/secret/{secretId}", web::get().to(read_secret))
        .route("/v1/secrets", web::get().to(list_secrets))
        .route("/v1/secrets/list", web::post().to(list_project_secrets))
        .route("/v1/secrets/export", web::post().to(export_secrets))
        .route("/v1/secrets/poll", web::post().to(poll_secrets))
        .route("/v1/cli/projects", web::get().to(cli_projects))
        .route("/v1/cli/secrets", web::get().to(cli_secrets));
}

/// Authenticates a signed request for `route` and, when it passes, responds with 200 and the
/// JSON that `work` returns.
async fn serve<T, F>(
    state: &AppState,
    request: &HttpRequest,
    body: &Bytes,
    route: MachineRoute,
    work: F,
) -> Result<HttpResponse, ApiError>
where
    T: Serialize + Send + 'static,
    F: FnOnce(&AppState, &Authenticated) -> Result<T, ApiError> + Send + 'static,
{
    let pending = authenticate::PendingRequest::read(state, request, body);
    let value = state
        .blocking(move |state| {
            let machine = authenticate(state, &pending, &route)?;
            work(state, &machine)
        })
        .await?;
    Ok(HttpResponse::Ok().json(value))
}

async fn read_secret(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let secret_id = path.into_inner().parse::<SecretId>().ok();
    // A malformed id is authenticated like a list, then gets 404.
    let route = secret_id
        .clone()
        .map_or(MachineRoute::ListSecrets, MachineRoute::ReadSecret);
    serve(&state, &request, &body, route, move |state, auth| {
        let secret_id = secret_id.ok_or_else(not_found)?;
        let secret = state
            .store
            .get_secret(&secret_id)
            .map_err(store_error)?
            .filter(|secret| secret.vault_id == auth.machine.vault_id)
            .ok_or_else(not_found)?;
        let value = read_value(state, auth, &secret)?;
        Ok(SecretValueResponse { value })
    })
    .await
}

async fn list_secrets(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    serve(
        &state,
        &request,
        &body,
        MachineRoute::ListSecrets,
        |state, auth| {
            let secrets = readable_secrets(state, &auth.machine, None)?;
            Ok(SecretListResponse {
                secrets: secrets.iter().map(summary).collect(),
            })
        },
    )
    .await
}

async fn list_project_secrets(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let project = parse_json::<ProjectFilterRequest>(&body).and_then(|filter| {
        filter
            .project_id
            .parse::<ProjectId>()
            .map_err(|error| ApiError::BadRequest(format!("invalid `projectId`: {error}")))
    });
    // A malformed body is authenticated like a list, then gets 400.
    let route = project
        .as_ref()
        .map_or(MachineRoute::ListSecrets, |project| {
            MachineRoute::ListProjectSecrets(project.clone())
        });
    serve(&state, &request, &body, route, move |state, auth| {
        let project = project?;
        let secrets = readable_secrets(state, &auth.machine, Some(&project))?;
        Ok(SecretListResponse {
            secrets: secrets.iter().map(summary).collect(),
        })
    })
    .await
}

async fn export_secrets(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let filter = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(ExportRequest::default())
    } else {
        parse_json::<ExportRequest>(&body)
    };
    let project = filter.and_then(|filter| {
        filter
            .project_id
            .map(|text| {
                text.parse::<ProjectId>()
                    .map_err(|error| ApiError::BadRequest(format!("invalid `projectId`: {error}")))
            })
            .transpose()
    });
    let route = project
        .as_ref()
        .map_or(MachineRoute::Export(None), |project| {
            MachineRoute::Export(project.clone())
        });
    serve(&state, &request, &body, route, move |state, auth| {
        let project = project?;
        let secrets = readable_secrets(state, &auth.machine, project.as_ref())?;
        let mut exported = Vec::with_capacity(secrets.len());
        for secret in &secrets {
            exported.push(ExportedSecret {
                id: secret.id.clone(),
                name: secret.name.clone(),
                value: read_value(state, auth, secret)?,
                field_names: field_names(secret),
            });
        }
        Ok(ExportResponse { secrets: exported })
    })
    .await
}

async fn poll_secrets(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let watch = parse_json::<PollRequest>(&body).and_then(|poll| {
        if poll.watch.len() > MAX_POLL_WATCH {
            return Err(ApiError::BadRequest(format!(
                "invalid `watch`: {} ids, at most {MAX_POLL_WATCH} are accepted",
                poll.watch.len()
            )));
        }
        Ok(poll.watch)
    });
    serve(
        &state,
        &request,
        &body,
        MachineRoute::Poll,
        move |state, auth| {
            let watch = watch?;
            poll(state, &auth.machine, &watch)
        },
    )
    .await
}

async fn cli_projects(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    serve(
        &state,
        &request,
        &body,
        MachineRoute::CliProjects,
        |state, auth| {
            let projects = state
                .store
                .machine_projects(&auth.machine.id)
                .map_err(store_error)?;
            Ok(CliProjectsResponse {
                projects: projects
                    .into_iter()
                    .map(|project| CliProject {
                        project_id: project.id,
                        project_name: project.name,
                        application_id: None,
                        application_name: None,
                    })
                    .collect(),
            })
        },
    )
    .await
}

async fn cli_secrets(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    serve(
        &state,
        &request,
        &body,
        MachineRoute::CliSecrets,
        |state, auth| {
            let secrets = readable_secrets(state, &auth.machine, None)?;
            let mut project_names: BTreeMap<ProjectId, String> = BTreeMap::new();
            let mut listed = Vec::with_capacity(secrets.len());
            for secret in secrets {
                if !project_names.contains_key(&secret.project_id) {
                    let name = state
                        .store
                        .get_project(&secret.vault_id, &secret.project_id)
                        .map_err(store_error)?
                        .map(|project| project.name)
                        .unwrap_or_default();
                    project_names.insert(secret.project_id.clone(), name);
                }
                listed.push(CliSecret {
                    field_names: field_names(&secret),
                    project_name: project_names
                        .get(&secret.project_id)
                        .cloned()
                        .unwrap_or_default(),
                    id: secret.id,
                    name: secret.name,
                    project_id: secret.project_id,
                    application_id: None,
                    application_name: None,
                    kind: match secret.value_type {
                        SecretValueType::Secret => SecretKind::Secret,
                        SecretValueType::Structured => SecretKind::Structured,
                    },
                });
            }
            Ok(CliSecretsResponse { secrets: listed })
        },
    )
    .await
}

fn not_found() -> ApiError {
    ApiError::NotFound(NOT_FOUND.to_owned())
}

/// Returns the secrets `machine` has grants on, of one project or all, ordered by name.
fn readable_secrets(
    state: &AppState,
    machine: &Machine,
    project: Option<&ProjectId>,
) -> Result<Vec<SecretRecord>, ApiError> {
    let store = state.store.as_ref();
    let granted = store.granted_secrets(&machine.id).map_err(store_error)?;
    let mut secrets = Vec::with_capacity(granted.len());
    for id in granted {
        let Some(secret) = store.get_secret(&id).map_err(store_error)? else {
            continue;
        };
        let in_scope = secret.vault_id == machine.vault_id
            && project.is_none_or(|project| *project == secret.project_id);
        if in_scope {
            secrets.push(secret);
        }
    }
    secrets.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    Ok(secrets)
}

fn field_names(secret: &SecretRecord) -> Option<String> {
    secret
        .field_names
        .as_ref()
        .and_then(|names| serde_json::to_string(names).ok())
}

fn summary(secret: &SecretRecord) -> SecretSummary {
    SecretSummary {
        id: secret.id.clone(),
        name: secret.name.clone(),
        field_names: field_names(secret),
        project_id: secret.project_id.clone(),
    }
}

/// Decrypts a secret's value for `auth`'s machine, then records the version it read (for poll)
/// and writes a `secret_read` entry in one store transaction.
fn read_value(
    state: &AppState,
    auth: &Authenticated,
    secret: &SecretRecord,
) -> Result<String, ApiError> {
    let plain = state
        .cipher
        .decrypt(&secret.id, secret.version, &secret.ciphertext)
        .map_err(|error| {
            tracing::error!(%error, "cannot decrypt a stored secret");
            ApiError::Internal
        })?;
    let value = String::from_utf8(plain.to_vec()).map_err(|_| {
        tracing::error!(secret_id = %secret.id, "a stored secret is not UTF-8");
        ApiError::Internal
    })?;
    let mut event = AuditEvent::new(
        auth.now,
        secret.vault_id.clone(),
        Actor::Machine(auth.machine.id),
        AuditAction::SecretRead,
        Target::Secret(secret.id.clone()),
        serde_json::json!({ "version": secret.version, "name": secret.name }),
    );
    event.source_ip = auth.source;
    // One transaction for both writes, so the read costs one commit.
    let record = state
        .store
        .record_secret_read_audited(&auth.machine.id, &secret.id, secret.version, &event)
        .map_err(store_error)?;
    audit_log::alert(state, &record);
    Ok(value)
}

/// Reports the real changes among `watch` for `machine`.
fn poll(state: &AppState, machine: &Machine, watch: &[String]) -> Result<PollResponse, ApiError> {
    let store = state.store.as_ref();
    let mut changes = BTreeMap::new();
    let mut readable = Vec::new();
    for text in watch {
        let status = match text.parse::<SecretId>() {
            Err(_) => Some(PollStatus::Deleted),
            Ok(id) => match store.get_secret(&id).map_err(store_error)? {
                Some(secret) if secret.vault_id == machine.vault_id => {
                    if store.has_grant(&id, &machine.id).map_err(store_error)? {
                        readable.push((id, secret.version));
                        None
                    } else {
                        Some(PollStatus::AccessDenied)
                    }
                }
                _ => Some(PollStatus::Deleted),
            },
        };
        if let Some(status) = status {
            changes.insert(text.clone(), PollChange { status });
        }
    }
    let ids: Vec<SecretId> = readable.iter().map(|(id, _)| id.clone()).collect();
    let last_read: BTreeMap<SecretId, u64> = store
        .last_read_versions(&machine.id, &ids)
        .map_err(store_error)?
        .into_iter()
        .collect();
    for (id, version) in readable {
        if last_read.get(&id).is_some_and(|read| version > *read) {
            changes.insert(
                id.to_string(),
                PollChange {
                    status: PollStatus::Changed,
                },
            );
        }
    }
    Ok(PollResponse { changes })
}
