//! Building the api from its settings, and serving until told to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::apps::AuthCache;
use crate::auth::Jwt;
use crate::extract::BodyLimit;
use crate::publisher::Publisher;
use crate::routes;
use crate::settings::ApiSettings;
use crate::state::{AppState, Shared};
use crate::store::Pools;
use crate::store::health::Probe;

/// Longest wait for in-flight requests once shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait at start for the first load of the revocation state.
const INITIAL_AUTH_LOAD: Duration = Duration::from_secs(3);

/// A bound, ready-to-serve api.
pub struct Application {
    listener: TcpListener,
    metrics_listener: TcpListener,
    router: Router,
    publisher: Publisher,
    auth: Arc<AuthCache>,
    shutdown: CancellationToken,
}

impl Application {
    /// Checks the settings, binds the listeners (port 0 picks one) and starts connecting to
    /// the broker and the database in the background.
    pub async fn build(settings: ApiSettings) -> anyhow::Result<Self> {
        settings.check()?;
        settings.check_publish()?;
        // Bind first: a taken port fails the start before any connection is opened.
        let listener = TcpListener::bind(settings.http_addr)
            .await
            .with_context(|| format!("cannot listen on EYE_HTTP_ADDR={}", settings.http_addr))?;
        let metrics_listener = TcpListener::bind(settings.metrics_addr)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on EYE_METRICS_ADDR={}",
                    settings.metrics_addr
                )
            })?;
        let jwt = Jwt::new(&settings.jwt)?;
        if settings.jwt.uses_dev_secret() {
            tracing::warn!(
                "EYE_JWT_SECRET is the public development default (allowed on loopback only): \
                 set your own secret"
            );
        }
        let pools = Pools::open(&settings).await?;
        let publisher = Publisher::start(settings.amqp.clone(), &settings.publish);
        let shutdown = CancellationToken::new();
        let probe = Probe::new(pools.ingestion.clone());
        let auth = Arc::new(AuthCache::new(settings.access.clone(), pools.ingestion));
        // One load before serving, so a healthy start does not answer 503 at first; if the
        // database is down it fails and requests get 503 until the refresher succeeds.
        match tokio::time::timeout(INITIAL_AUTH_LOAD, auth.refresh()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "revocation state not loaded yet"),
            Err(_) => tracing::warn!("revocation state not loaded yet: timed out"),
        }
        auth.clone().spawn_refresher(shutdown.clone());
        let state = AppState::new(Shared {
            jwt: Arc::new(jwt),
            auth: auth.clone(),
            publisher: publisher.clone(),
            body_limit: BodyLimit(settings.max_body_bytes),
            batch: settings.batch,
            import_max_bytes: settings.import_max_bytes,
            retry_after_secs: settings.publish.retry_after_secs,
            reads: pools.reads,
            partitions: Default::default(),
            webhook_sender: webhook_sender(&settings)?,
            probe,
            shutdown: shutdown.clone(),
        });
        let limits = routes::Limits {
            reads: settings.read_concurrency,
            search: settings.search_concurrency,
        };
        let router = routes::router(settings.bench_noop_route, limits)
            .with_state(state.clone())
            .layer(DefaultBodyLimit::max(settings.max_body_bytes as usize))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                settings.request_timeout(),
            ))
            .merge(routes::upload_router().with_state(state))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let request_id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id)
            }))
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid));
        Ok(Self {
            listener,
            metrics_listener,
            router,
            publisher,
            auth,
            shutdown,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where `/metrics` is served.
    pub fn metrics_addr(&self) -> std::io::Result<SocketAddr> {
        self.metrics_listener.local_addr()
    }

    /// The revocation state (tests count its lookups).
    pub fn auth(&self) -> Arc<AuthCache> {
        self.auth.clone()
    }

    /// Serves until `stop` is cancelled, then drains in-flight requests (bounded) and
    /// closes the broker connection.
    pub async fn run_until_stopped(self, stop: CancellationToken) -> std::io::Result<()> {
        let addr = self.listener.local_addr()?;
        let metrics_addr = self.metrics_listener.local_addr()?;
        tracing::info!(%addr, %metrics_addr, "api listening");
        let metrics = axum::serve(
            self.metrics_listener,
            routes::metrics::router(eye_core::telemetry::metrics_handle()),
        )
        .with_graceful_shutdown(stop.clone().cancelled_owned());
        tokio::spawn(async move {
            if let Err(e) = metrics.await {
                tracing::warn!(error = %e, "the metrics listener stopped");
            }
        });
        let readiness = self.shutdown.clone();
        let signal = stop.clone();
        let server = axum::serve(self.listener, self.router).with_graceful_shutdown(async move {
            signal.cancelled().await;
            readiness.cancel();
        });
        let drain_deadline = async {
            stop.cancelled().await;
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        };
        tokio::select! {
            result = server => result?,
            () = drain_deadline => tracing::warn!("in-flight requests did not finish in time"),
        }
        self.publisher.close().await;
        tracing::info!("api stopped");
        Ok(())
    }
}

/// The test sender: the webhook timeout, within the request timeout (whose bare 503 would
/// otherwise answer a slow endpoint's test).
fn webhook_sender(settings: &ApiSettings) -> anyhow::Result<eye_dispatcher::Sender> {
    let mut send = settings.webhooks.clone();
    let request_ms = settings.request_timeout().as_millis();
    let within = u64::try_from(request_ms.saturating_sub(500))
        .unwrap_or(u64::MAX)
        .max(1);
    send.timeout_ms = send.timeout_ms.min(within);
    eye_dispatcher::Sender::new(&send)
}
