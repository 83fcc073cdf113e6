//! Logging through tracing-subscriber: readable by default, JSON on a setting.

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
