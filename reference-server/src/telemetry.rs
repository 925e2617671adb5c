//! Logging, request ids, Prometheus metrics and the health routes.
//!
//! Every request runs inside a `request` span carrying its request id, method and matched route
//! pattern, so every log line of the request names the id. The raw path is never logged, because
//! the bootstrap routes carry a token in it. The id is taken from an incoming `X-Request-Id` when
//! it is 1 to 64 characters of letters, digits, `.`, `_` and `-`. Otherwise a new one is made.
//! The id is echoed in the response's `X-Request-Id` header.
//!
//! Work moved to `actix_web::web::block` runs on another thread and leaves the span behind; a
//! handler that logs there should enter `tracing::Span::current()` captured before the move.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The request id header.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest accepted incoming request id.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// A telemetry setup failure.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A global logger was already installed.
    #[error("cannot install the logger: {0}")]
    Logger(String),
    /// A metric could not be registered (a duplicate name).
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Installs the global logger in `format`. The level filter comes from `RUST_LOG` and
/// defaults to `info`.
///
/// # Errors
///
/// [`TelemetryError::Logger`] when a logger is already installed.
pub fn init_logging(format: LogFormat) -> Result<(), TelemetryError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only help a person at a terminal; in a log file they are noise.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    result.map_err(|error| TelemetryError::Logger(error.to_string()))
}

/// The server's Prometheus metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    decisions: IntCounterVec,
    guardrail_blocks: IntCounterVec,
    request_duration: HistogramVec,
}

impl Metrics {
    /// Creates and registers the metrics.
    ///
    /// # Errors
    ///
    /// [`TelemetryError::Metrics`] on a registration failure.
    pub fn new() -> Result<Self, TelemetryError> {
        let registry = Registry::new();
        let decisions = IntCounterVec::new(
            Opts::new(
                "guardrail_decisions_total",
                "Signed machine requests evaluated, by outcome and deciding step",
            ),
            &["outcome", "step"],
        )?;
        let guardrail_blocks = IntCounterVec::new(
            Opts::new(
                "guardrail_blocks_total",
                "Requests blocked by a per-machine guardrail, by axis",
            ),
            &["axis"],
        )?;
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "guardrail_http_request_duration_seconds",
                "HTTP request latency in seconds",
            ),
            &["method", "route", "status"],
        )?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(guardrail_blocks.clone()))?;
        registry.register(Box::new(request_duration.clone()))?;
        Ok(Self {
            registry,
            decisions,
            guardrail_blocks,
            request_duration,
        })
    }

    /// Counts one evaluation: `failed_step` is the step (1 to 9) that decided a denial, or
    /// `None` for an allowed request.
    pub fn record_decision(&self, failed_step: Option<u8>) {
        match failed_step {
            None => self.decisions.with_label_values(&["allowed", "none"]).inc(),
            Some(step) => self
                .decisions
                .with_label_values(&["denied", &step.to_string()])
                .inc(),
        }
    }

    /// Counts one guardrail block on `axis` (`ip`, `geo` or `time_window`).
    pub fn record_block(&self, axis: &str) {
        self.guardrail_blocks.with_label_values(&[axis]).inc();
    }

    fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.request_duration
            .with_label_values(&[method, route, &status.to_string()])
            .observe(seconds);
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding to a Vec fails only on invalid metric data, which registration excludes.
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .is_err()
        {
            tracing::error!("cannot encode metrics");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

/// Returns the incoming id if it is acceptable, else a new random one.
pub fn request_id(incoming: Option<&HeaderValue>) -> String {
    if let Some(value) = incoming.and_then(|value| value.to_str().ok())
        && (1..=MAX_REQUEST_ID_LEN).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return value.to_owned();
    }
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // A counter still distinguishes requests when the system generator fails.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        return format!("local-{}", COUNTER.fetch_add(1, Ordering::Relaxed));
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Middleware (for `actix_web::middleware::from_fn`): request id, span and latency metric.
/// It reads [`Metrics`] from the app data when present.
///
/// # Errors
///
/// Passes on the inner service's error.
pub async fn request_telemetry(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request_id(request.headers().get(REQUEST_ID_HEADER));
    let method = request.method().as_str().to_owned();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let metrics = request.app_data::<web::Data<Metrics>>().cloned();
    let span = tracing::info_span!("request", request_id = %id, %method, %route);
    let started = Instant::now();

    let mut response = next.call(request).instrument(span.clone()).await?;

    let status = response.status().as_u16();
    if let Some(metrics) = metrics {
        metrics.observe_request(&method, &route, status, started.elapsed().as_secs_f64());
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    span.in_scope(|| tracing::debug!(status, "request finished"));
    Ok(response)
}

/// A readiness check (the store is reachable): `Ok` when ready, else a reason for the log.
/// It runs on a blocking thread, so it may call synchronous store code.
pub type ReadinessCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Registers `/healthz`, `/readyz` and `/metrics`.
pub fn health_routes(
    config: &mut web::ServiceConfig,
    metrics: web::Data<Metrics>,
    readiness: ReadinessCheck,
) {
    config
        .app_data(metrics)
        .app_data(web::Data::new(readiness))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics_text));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(check: web::Data<ReadinessCheck>) -> HttpResponse {
    let check = Arc::clone(check.get_ref());
    let result = web::block(move || check()).await;
    match result {
        Ok(Ok(())) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Ok(Err(reason)) => {
            tracing::warn!(%reason, "not ready");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({ "error": "not ready" }))
        }
        Err(error) => {
            tracing::error!(%error, "readiness check panicked");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({ "error": "not ready" }))
        }
    }
}

async fn metrics_text(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use actix_web::App;
    use actix_web::middleware::from_fn;
    use actix_web::test as actix_test;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn always_ready() -> ReadinessCheck {
        Arc::new(|| Ok(()))
    }

    #[test]
    fn request_id_acceptance() {
        let ok = HeaderValue::from_static("abc-123_x.y");
        assert_eq!(request_id(Some(&ok)), "abc-123_x.y");
        for bad in ["", "has space", "semi;colon", &"a".repeat(65)] {
            let value = HeaderValue::from_str(bad).unwrap();
            let id = request_id(Some(&value));
            assert_ne!(id, bad);
            assert_eq!(id.len(), 32, "{id}");
        }
        assert_ne!(request_id(None), request_id(None));
    }

    #[actix_web::test]
    async fn request_id_echoed_and_logged() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let metrics = web::Data::new(Metrics::new().unwrap());
        let app = actix_test::init_service(
            App::new()
                .wrap(from_fn(request_telemetry))
                .configure(|config| health_routes(config, metrics.clone(), always_ready()))
                .route(
                    "/v1/{vault}/temp-bootstrap/{token}",
                    web::get().to(|| async {
                        tracing::info!("serving script");
                        HttpResponse::Ok().finish()
                    }),
                ),
        )
        .await;

        let request = actix_test::TestRequest::get()
            .uri("/v1/vault_abc/temp-bootstrap/SECRET-TOKEN")
            .insert_header(("X-Request-Id", "req-42"))
            .to_request();
        let response = actix_test::call_service(&app, request).await;
        assert_eq!(response.headers().get("x-request-id").unwrap(), "req-42");

        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line = logs
            .lines()
            .find(|line| line.contains("serving script"))
            .unwrap();
        assert!(line.contains(r#""request_id":"req-42""#), "{line}");
        assert!(
            line.contains("/v1/{vault}/temp-bootstrap/{token}"),
            "{line}"
        );
        assert!(!logs.contains("SECRET-TOKEN"), "{logs}");

        let response = actix_test::call_service(
            &app,
            actix_test::TestRequest::get().uri("/healthz").to_request(),
        )
        .await;
        let generated = response
            .headers()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(generated.len(), 32);
    }

    #[actix_web::test]
    async fn health_ready_and_metrics() {
        let metrics = web::Data::new(Metrics::new().unwrap());
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let check: ReadinessCheck = {
            let ready = Arc::clone(&ready);
            Arc::new(move || {
                if ready.load(Ordering::SeqCst) {
                    Ok(())
                } else {
                    Err("store down".into())
                }
            })
        };
        let app = actix_test::init_service(
            App::new()
                .wrap(from_fn(request_telemetry))
                .configure(|config| health_routes(config, metrics.clone(), check)),
        )
        .await;

        let response = actix_test::call_service(
            &app,
            actix_test::TestRequest::get().uri("/healthz").to_request(),
        )
        .await;
        assert_eq!(response.status(), 200);
        let response = actix_test::call_service(
            &app,
            actix_test::TestRequest::get().uri("/readyz").to_request(),
        )
        .await;
        assert_eq!(response.status(), 200);
        ready.store(false, Ordering::SeqCst);
        let response = actix_test::call_service(
            &app,
            actix_test::TestRequest::get().uri("/readyz").to_request(),
        )
        .await;
        assert_eq!(response.status(), 503);
        let body = actix_test::read_body(response).await;
        assert_eq!(body, r#"{"error":"not ready"}"#);

        metrics.record_decision(None);
        metrics.record_decision(Some(5));
        metrics.record_decision(Some(5));
        metrics.record_block("ip");
        let response = actix_test::call_service(
            &app,
            actix_test::TestRequest::get().uri("/metrics").to_request(),
        )
        .await;
        assert_eq!(response.status(), 200);
        let text = String::from_utf8(actix_test::read_body(response).await.to_vec()).unwrap();
        assert!(
            text.contains(r#"guardrail_decisions_total{outcome="allowed",step="none"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"guardrail_decisions_total{outcome="denied",step="5"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"guardrail_blocks_total{axis="ip"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"guardrail_http_request_duration_seconds_count{method="GET",route="/readyz",status="503"} 1"#),
            "{text}"
        );
    }
}
