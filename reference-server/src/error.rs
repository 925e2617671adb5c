//! The API's one error type, and the one place that maps it to a status code and a body.
//!
//! Every error response is `{"error": "<message>"}` and nothing else, as SikkerKey's clients expect.
//! Authentication failures carry one generic message whatever their cause, so that the body tells
//! nobody without the key why a request failed; the cause goes to the audit trail and the log.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// Largest request body the API accepts, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The generic message of every 401.
pub const AUTHENTICATION_FAILED: &str = "authentication failed";

/// An error body: `{"error": "..."}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// The message shown to the client.
    pub error: &'a str,
}

/// An error response of the API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed; the message names the field and value.
    #[error("{0}")]
    BadRequest(String),
    /// 401: authentication failed, for whatever reason (the body is always the same).
    #[error("{AUTHENTICATION_FAILED}")]
    Unauthenticated,
    /// 401 on the admin API: the owner key is missing or unknown. Owner keys carry 256 random
    /// bits, so saying which header is expected helps the operator and no guesser.
    #[error(
        "missing or invalid owner key: send `Authorization: Bearer <owner key>` with the key `guardrail-server vault create` printed"
    )]
    OwnerKeyRejected,
    /// 403: the caller is known but not allowed. The message may give the reason.
    #[error("{0}")]
    Forbidden(String),
    /// 404: the resource does not exist for this caller.
    #[error("{0}")]
    NotFound(String),
    /// 409: the request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is larger than [`MAX_BODY_BYTES`].
    #[error("request body too large: at most {MAX_BODY_BYTES} bytes are accepted")]
    PayloadTooLarge,
    /// 429: the source is locked out; retry after the given delay.
    #[error("too many failed attempts, retry in {} seconds", retry_after_seconds(*.retry_after))]
    RateLimited {
        /// How long the client should wait.
        retry_after: Duration,
    },
    /// 503: a dependency (the store) is unavailable; clients retry.
    #[error("service unavailable, retry later")]
    Unavailable,
    /// 500: a bug or an unexpected failure. The client sees a generic message; the cause is
    /// logged where this error is made.
    #[error("internal error")]
    Internal,
}

/// Rounds a delay up to whole seconds, at least 1, for `Retry-After`.
fn retry_after_seconds(delay: Duration) -> u64 {
    let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    seconds.max(1)
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated | Self::OwnerKeyRejected => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = self.to_string();
        let mut response = HttpResponse::build(self.status_code());
        if let Self::RateLimited { retry_after } = self {
            response.insert_header((
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_seconds(*retry_after)),
            ));
        }
        response.json(ErrorBody { error: &message })
    }
}

/// Parses a JSON request body read as raw bytes (the machine API must hash the exact bytes
/// before parsing). Unknown fields are accepted when `T` allows them.
///
/// # Errors
///
/// [`ApiError::PayloadTooLarge`] above [`MAX_BODY_BYTES`], and [`ApiError::BadRequest`] naming
/// serde's reason when the body is not valid JSON of the expected shape.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    serde_json::from_slice(body)
        .map_err(|error| ApiError::BadRequest(format!("invalid JSON body: {error}")))
}

/// Builds the actix JSON extractor configuration of the admin API: the size limit, no
/// `Content-Type` requirement, and errors returned as [`ApiError`].
pub fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .content_type_required(false)
        .error_handler(|error, _request| {
            use actix_web::error::JsonPayloadError;
            let api_error = match &error {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => ApiError::PayloadTooLarge,
                JsonPayloadError::Deserialize(inner) => {
                    ApiError::BadRequest(format!("invalid JSON body: {inner}"))
                }
                other => ApiError::BadRequest(format!("invalid request body: {other}")),
            };
            api_error.into()
        })
}

/// Builds the raw body configuration (for `web::Bytes` extractors) with the size limit.
pub fn payload_config() -> actix_web::web::PayloadConfig {
    actix_web::web::PayloadConfig::new(MAX_BODY_BYTES)
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;

    use super::*;

    async fn body_of(error: ApiError) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = error.error_response();
        let status = response.status();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|value| value.to_str().unwrap().to_owned());
        let bytes = to_bytes(response.into_body()).await.unwrap();
        (status, retry, serde_json::from_slice(&bytes).unwrap())
    }

    #[actix_web::test]
    async fn statuses_and_bodies() {
        let cases = [
            (
                ApiError::BadRequest("invalid `name`".into()),
                400,
                "invalid `name`",
            ),
            (ApiError::Unauthenticated, 401, "authentication failed"),
            (
                ApiError::Forbidden("plan `free` does not allow temporary machines".into()),
                403,
                "plan `free` does not allow temporary machines",
            ),
            (
                ApiError::NotFound("secret not found".into()),
                404,
                "secret not found",
            ),
            (
                ApiError::Conflict("token already used".into()),
                409,
                "token already used",
            ),
            (
                ApiError::PayloadTooLarge,
                413,
                "request body too large: at most 65536 bytes are accepted",
            ),
            (
                ApiError::Unavailable,
                503,
                "service unavailable, retry later",
            ),
            (ApiError::Internal, 500, "internal error"),
        ];
        for (error, status, message) in cases {
            let (got_status, retry, body) = body_of(error).await;
            assert_eq!(got_status.as_u16(), status);
            assert_eq!(retry, None);
            assert_eq!(body, serde_json::json!({ "error": message }));
        }
    }

    #[actix_web::test]
    async fn rate_limited_sets_retry_after() {
        let (status, retry, body) = body_of(ApiError::RateLimited {
            retry_after: Duration::from_millis(89_400),
        })
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry.as_deref(), Some("90"));
        assert_eq!(
            body["error"],
            "too many failed attempts, retry in 90 seconds"
        );

        let (_, retry, _) = body_of(ApiError::RateLimited {
            retry_after: Duration::ZERO,
        })
        .await;
        assert_eq!(retry.as_deref(), Some("1"));
    }

    #[test]
    fn parse_json_limits_and_reports() {
        #[derive(serde::Deserialize, Debug)]
        struct Body {
            #[expect(dead_code, reason = "only parsed")]
            watch: Vec<String>,
        }
        let ok: Body = parse_json(br#"{"watch":[],"extra":1}"#).unwrap();
        drop(ok);
        let error = parse_json::<Body>(b"{").unwrap_err();
        assert!(
            error.to_string().starts_with("invalid JSON body: "),
            "{error}"
        );
        let error = parse_json::<Body>(br#"{"watch":"x"}"#).unwrap_err();
        assert!(error.to_string().contains("invalid type"), "{error}");
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert!(matches!(
            parse_json::<Body>(&big),
            Err(ApiError::PayloadTooLarge)
        ));
    }
}
