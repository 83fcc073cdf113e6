//! Workers for tests: in-process (a task) or as a real `eye-worker` process that can be
//! killed.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::TestEnv;

/// A worker running as a task of the test's runtime.
pub struct TestWorker {
    stop: CancellationToken,
    handle: Option<JoinHandle<()>>,
}

impl TestEnv {
    /// Starts an in-process worker; `extra` flags override the defaults.
    pub async fn spawn_worker_with(&self, extra: &[&str]) -> TestWorker {
        let worker = eye_worker::Worker::build(self.worker_settings(extra))
            .await
            .expect("build worker");
        let stop = CancellationToken::new();
        let handle = tokio::spawn(worker.run_until_stopped(stop.clone()));
        TestWorker {
            stop,
            handle: Some(handle),
        }
    }

    pub async fn spawn_worker(&self) -> TestWorker {
        self.spawn_worker_with(&[]).await
    }

    /// Starts the real `eye-worker` binary against this env.
    pub fn spawn_worker_process(&self) -> WorkerProcess {
        self.spawn_worker_process_with(&[])
    }

    /// Starts the real `eye-worker` binary with `extra` environment variables.
    pub fn spawn_worker_process_with(&self, extra: &[(&str, &str)]) -> WorkerProcess {
        spawn_process("eye-worker", self.worker_env(), extra)
    }
}

impl TestWorker {
    /// Asks the worker to stop (finish and ack the batch in hand) and waits for it.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// An `eye-worker` (or `eye-fetcher`) child process.
pub struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    /// SIGKILL: no chance to finish, ack or close anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `within` for the exit; returns whether it exited cleanly.
    pub async fn terminate(&mut self, within: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            if tokio::time::Instant::now() >= deadline {
                self.kill();
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// Starts the workspace's binary `name` (see [`built_binary`]) with `env`, then `extra` (which wins).
pub(crate) fn spawn_process(
    name: &str,
    env: Vec<(&'static str, String)>,
    extra: &[(&str, &str)],
) -> WorkerProcess {
    let child = Command::new(built_binary(name))
        .envs(env)
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    WorkerProcess { child }
}

/// The binary `name` (`eye-worker`, `eye-fetcher`) built next to this test binary
/// (`target/<profile>/<name>`), or the path in `EYE_WORKER_BIN` / `EYE_FETCHER_BIN`.
/// `make test` builds them first.
pub fn built_binary(name: &str) -> PathBuf {
    let variable = format!("{}_BIN", name.to_ascii_uppercase().replace('-', "_"));
    if let Some(path) = std::env::var_os(variable) {
        return path.into();
    }
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --workspace --bins` (make test does)",
        path.display()
    );
    path
}
