//! Dispatchers for tests: in-process (a task) or the real `eye-dispatcher` binary (to kill).

use clap::Parser;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::TestEnv;
use crate::worker::{WorkerProcess, spawn_process};

/// A dispatcher running as a task of the test's runtime.
pub struct TestDispatcher {
    stop: CancellationToken,
    handle: Option<JoinHandle<()>>,
}

/// Flags every test dispatcher gets: the test receiver on loopback is allowed, a compressed
/// schedule, quick polls.
pub const DISPATCHER_TEST_FLAGS: &[&str] = &[
    "--webhook-allow-nets",
    "127.0.0.1/32",
    "--webhook-schedule",
    "0s,200ms,400ms,800ms",
    "--webhook-poll-ms",
    "20",
    "--webhook-refresh-ms",
    "100",
    "--webhook-timeout-ms",
    "3000",
];

impl TestEnv {
    /// Dispatcher settings for this env: [`DISPATCHER_TEST_FLAGS`], then `extra` (wins).
    pub fn dispatcher_settings(&self, extra: &[&str]) -> eye_dispatcher::DispatcherSettings {
        let mut args = vec![
            "eye-dispatcher".to_owned(),
            "--database-url".into(),
            self.db_url.clone(),
            "--log".into(),
            std::env::var("EYE_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        ];
        args.extend(DISPATCHER_TEST_FLAGS.iter().map(|s| (*s).to_owned()));
        let args = crate::with_overrides(args, extra);
        eye_dispatcher::DispatcherSettings::parse_from(args)
    }

    pub async fn spawn_dispatcher_with(&self, extra: &[&str]) -> TestDispatcher {
        let dispatcher = eye_dispatcher::Dispatcher::build(self.dispatcher_settings(extra))
            .await
            .expect("build dispatcher");
        let stop = CancellationToken::new();
        let handle = tokio::spawn(dispatcher.run_until_stopped(stop.clone()));
        TestDispatcher {
            stop,
            handle: Some(handle),
        }
    }

    pub async fn spawn_dispatcher(&self) -> TestDispatcher {
        self.spawn_dispatcher_with(&[]).await
    }

    /// The real `eye-dispatcher` binary against this env, with `extra` variables.
    pub fn spawn_dispatcher_process(&self, extra: &[(&str, &str)]) -> WorkerProcess {
        let env = vec![
            ("DATABASE_URL", self.db_url.clone()),
            ("EYE_DISPATCHER_METRICS_ADDR", "127.0.0.1:0".into()),
            ("EYE_WEBHOOK_ALLOW_NETS", "127.0.0.1/32".into()),
            ("EYE_WEBHOOK_SCHEDULE", "0s,200ms,400ms,800ms".into()),
            ("EYE_WEBHOOK_POLL_MS", "20".into()),
            ("EYE_WEBHOOK_REFRESH_MS", "100".into()),
            ("EYE_WEBHOOK_TIMEOUT_MS", "3000".into()),
            (
                "EYE_LOG",
                std::env::var("EYE_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ];
        spawn_process("eye-dispatcher", env, extra)
    }
}

impl TestDispatcher {
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }
}

impl Drop for TestDispatcher {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
