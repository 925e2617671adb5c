//! The HTTP routes, one module per resource.
//!
//! | module | routes |
//! | --- | --- |
//! | [`machine_api`] | `/v1/secret/...`, `/v1/secrets...`, `/v1/cli/...`: signed machine requests |
//! | [`bootstrap`] | `/v1/{vaultId}/temp-bootstrap/...`: scripts and registration |
//! | [`admin`] | `/admin/v1/...`: the owner's API |

pub mod admin;
pub mod bootstrap;
pub mod machine_api;

use actix_web::web::{self, ServiceConfig};

use crate::state::AppState;

/// Registers every route of the API, with `state` as shared data. Health and metrics routes are
/// registered separately by [`crate::telemetry::health_routes`].
pub fn configure(config: &mut ServiceConfig, state: AppState, test_clock: bool) {
    config
        .app_data(web::Data::new(state))
        .app_data(crate::error::json_config())
        .app_data(crate::error::payload_config())
        .configure(machine_api::configure)
        .configure(bootstrap::configure)
        .configure(|config| admin::configure(config, test_clock))
        .default_service(web::to(|| async {
            Err::<actix_web::HttpResponse, _>(crate::error::ApiError::NotFound(
                "route not found".to_owned(),
            ))
        }));
}
