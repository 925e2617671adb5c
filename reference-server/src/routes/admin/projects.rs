//! Projects and their machine members.

use actix_web::web::{self, Bytes, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use guardrail_core::ids::{MachineId, ProjectId};
use guardrail_store::Project;

use super::{check_name, shown, with_vault};
use crate::error::{ApiError, parse_json};
use crate::state::{AppState, random_bytes, store_error};
use crate::wire::{CreateProjectRequest, Items, ProjectView};

/// Registers the project routes.
pub fn configure(config: &mut ServiceConfig) {
    config
        .route("/vaults/{vaultId}/projects", web::post().to(create))
        .route("/vaults/{vaultId}/projects", web::get().to(list))
        .route(
            "/vaults/{vaultId}/projects/{projectId}/machines/{machineId}",
            web::post().to(add_member),
        );
}

fn view(project: &Project) -> ProjectView {
    ProjectView {
        project_id: project.id.clone(),
        name: project.name.clone(),
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
            let body: CreateProjectRequest = parse_json(&body)?;
            let project = Project {
                id: ProjectId::from_random_bytes(&random_bytes::<12>()?),
                vault_id: vault.id.clone(),
                name: check_name("name", &body.name)?,
                created_at: state.clock.now(),
            };
            state.store.create_project(&project).map_err(store_error)?;
            Ok(view(&project))
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
        let projects = state.store.list_projects(&vault.id).map_err(store_error)?;
        Ok(Items {
            items: projects.iter().map(view).collect(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(items))
}

async fn add_member(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (vault, project, machine) = path.into_inner();
    with_vault(&state, &request, vault, move |state, _, vault| {
        let project_id = project
            .parse::<ProjectId>()
            .map_err(|_| ApiError::NotFound(format!("project `{}` not found", shown(&project))))?;
        let machine_id = machine
            .parse::<MachineId>()
            .map_err(|_| ApiError::NotFound(format!("machine `{}` not found", shown(&machine))))?;
        state
            .store
            .add_project_member(&vault.id, &project_id, &machine_id)
            .map_err(store_error)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
