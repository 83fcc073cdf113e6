//! Logging through tracing-subscriber: readable by default, JSON on a setting.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
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
            let recorder = prometheus().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed already; this one then just
            // renders nothing, which is still a valid (empty) exposition.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Latency buckets in seconds, 0.5 ms to 10 s: the ingestion path lives in milliseconds, and
/// a broker or database stall shows in the upper ones.
const SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Size buckets (events per message, rows per batch), 1 to 5,000.
const SIZES: [f64; 10] = [
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0, 5000.0,
];

/// The Prometheus exporter every service uses: histograms are exported as histograms with
/// buckets (a summary's quantiles cannot be aggregated across replicas).
pub fn prometheus() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_events".into()), &SIZES))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_rows".into()), &SIZES))
        // Only an empty bucket list fails, and these are constants.
        .unwrap_or_else(|_| PrometheusBuilder::new())
}

#[cfg(test)]
mod tests {
    #[test]
    fn histograms_are_exported_with_buckets() {
        let recorder = super::prometheus().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!("eye_x_seconds").record(0.003);
            metrics::histogram!("eye_x_rows").record(30.0);
        });
        let text = handle.render();
        assert!(
            text.contains("eye_x_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(text.contains("eye_x_rows_bucket{le=\"50\"} 1"), "{text}");
        assert!(!text.contains("quantile"), "{text}");
    }
}
