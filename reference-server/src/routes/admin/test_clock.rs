//! `POST /admin/v1/test-clock/advance`, registered only with `--test-clock`. Any owner key may
//! move the clock, because the clock is the whole server's; it never moves back.

use actix_web::web::{self, Bytes, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};

use super::with_owner;
use crate::error::{ApiError, parse_json};
use crate::state::AppState;
use crate::wire::{AdvanceClockRequest, ClockView};

/// Registers the test clock route.
pub fn configure(config: &mut ServiceConfig) {
    config.route("/test-clock/advance", web::post().to(advance));
}

async fn advance(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let view = with_owner(&state, &request, move |state, owner| {
        let body: AdvanceClockRequest = parse_json(&body)?;
        let clock = state.clock.test_clock().ok_or_else(|| {
            tracing::error!("the test clock route is registered without a test clock");
            ApiError::Internal
        })?;
        let moved = match body {
            AdvanceClockRequest::Seconds { seconds } => clock.advance_seconds(seconds),
            AdvanceClockRequest::To { to } => clock.advance_to(to),
        };
        let now = moved.map_err(|error| ApiError::BadRequest(error.to_string()))?;
        tracing::warn!(owner_id = %owner.id, now = %now.to_rfc3339(), "test clock moved forward");
        Ok(ClockView { now })
    })
    .await?;
    state.sweep_now.notify_one();
    Ok(HttpResponse::Ok().json(view))
}
