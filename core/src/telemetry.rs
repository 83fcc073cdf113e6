//! Logging through tracing-subscriber: readable by default, JSON on a setting.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::settings::{LogFormat, TelemetrySettings};

/// Errors starting telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("EYE_LOG is not a valid filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    #[error("a global subscriber is already set")]
    AlreadySet,
}

/// Installs the global subscriber. Call once, from `main`.
pub fn init(settings: &TelemetrySettings) -> Result<(), TelemetryError> {
    let filter = EnvFilter::try_new(&settings.filter)?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match settings.log_format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|_| TelemetryError::AlreadySet)
}

/// The process's Prometheus recorder, installed on first use. The `metrics` facade has one
/// global recorder per process; keeping its handle here lets several api instances in one
/// process (the tests) share it instead of fighting over it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed already; this one then just
            // renders nothing, which is still a valid (empty) exposition.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
