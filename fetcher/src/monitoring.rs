//! The fetcher's metrics, served in Prometheus' text format on `EYE_FETCH_METRICS_ADDR`
//! (`/metrics`): `eye_fetch_plans_changed_total{provider}` (booked by the cycle),
//! `eye_fetch_failures_total{provider,reason}` (cycles that failed, by [`CycleError::reason`],
//! and documents not read to their end, `document`) and `eye_fetch_circuit_open{provider}`
//! (1 while the circuit keeps the provider from being called, 0 once it is closed);
//! `eye_fetch_records_removed_total{provider}` (a JSON provider's records gone from the remote,
//! booked by the cycle). Each cycle is also recorded in `fetch_cycles` ([`crate::history`]).

use std::net::SocketAddr;

use crate::{CycleError, CycleReport};

/// Installs the process's recorder and its HTTP listener on `addr`. Call once, from `main`,
/// within the runtime.
pub fn install(addr: SocketAddr) -> anyhow::Result<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()?;
    Ok(())
}

/// Books one cycle of `provider`: its failure, if any, and the circuit's state after it.
pub fn cycle(provider: &str, outcome: &Result<CycleReport, CycleError>, circuit_open: bool) {
    let failure = match outcome {
        Ok(report) => report.document_error.as_ref().map(|_| "document"),
        Err(e) => Some(e.reason()),
    };
    if let Some(reason) = failure {
        metrics::counter!(
            "eye_fetch_failures_total",
            "provider" => provider.to_owned(),
            "reason" => reason
        )
        .increment(1);
    }
    circuit(provider, circuit_open);
}

/// Sets the circuit gauge of `provider`.
pub fn circuit(provider: &str, open: bool) {
    metrics::gauge!("eye_fetch_circuit_open", "provider" => provider.to_owned()).set(if open {
        1.0
    } else {
        0.0
    });
}
