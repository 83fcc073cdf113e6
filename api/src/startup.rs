//! Building the api from its settings, and serving until told to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use sea_orm::{ConnectOptions, Database};
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
use crate::settings::{ApiSettings, DEV_JWT_SECRET};
use crate::state::{AppState, Shared};

/// Longest wait for in-flight requests once shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait at start for the first load of the revocation state.
const INITIAL_AUTH_LOAD: Duration = Duration::from_secs(3);

/// A bound, ready-to-serve api.
pub struct Application {
    listener: TcpListener,
    router: Router,
    publisher: Publisher,
    shutdown: CancellationToken,
}

impl Application {
    /// Checks the settings, binds the listener (port 0 picks one) and starts connecting to
    /// the broker and the database in the background.
    pub async fn build(settings: ApiSettings) -> anyhow::Result<Self> {
        settings.jwt.check()?;
        settings.check_publish()?;
        // Bind first: a taken port fails the start before any connection is opened.
        let listener = TcpListener::bind(settings.http_addr).await?;
        let jwt = Jwt::new(&settings.jwt)?;
        if settings.jwt.keys.is_none() && settings.jwt.secret.expose() == DEV_JWT_SECRET {
            tracing::warn!("EYE_JWT_SECRET is the development default: set your own secret");
        }
        let statement_timeout_ms = settings.read_timeout_ms;
        let mut db_options = ConnectOptions::new(settings.database.url.expose().clone());
        db_options
            .max_connections(settings.database.max_connections)
            .acquire_timeout(Duration::from_secs(settings.database.acquire_timeout_secs))
            .connect_lazy(true)
            .sqlx_logging(false)
            // One heavy read must not stall the api: PostgreSQL cancels it (503 `timeout`).
            .map_sqlx_postgres_opts(move |opts| {
                opts.options([("statement_timeout", format!("{statement_timeout_ms}ms"))])
            });
        let db = Database::connect(db_options).await?;
        let publisher = Publisher::start(settings.amqp.clone(), &settings.publish);
        let shutdown = CancellationToken::new();
        let auth = Arc::new(AuthCache::new(settings.access.clone()));
        // One load before serving, so a healthy start does not answer 503 at first; if the
        // database is down it fails and requests get 503 until the refresher succeeds.
        match tokio::time::timeout(INITIAL_AUTH_LOAD, auth.refresh(&db)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "revocation state not loaded yet"),
            Err(_) => tracing::warn!("revocation state not loaded yet: timed out"),
        }
        auth.clone().spawn_refresher(db.clone(), shutdown.clone());
        let state = AppState::new(Shared {
            jwt: Arc::new(jwt),
            auth,
            publisher: publisher.clone(),
            body_limit: BodyLimit(settings.max_body_bytes),
            retry_after_secs: settings.publish.retry_after_secs,
            db,
            metrics: eye_core::telemetry::metrics_handle(),
            shutdown: shutdown.clone(),
        });
        let router = routes::router(settings.bench_noop_route)
            .with_state(state)
            .layer(DefaultBodyLimit::max(settings.max_body_bytes as usize))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                settings.request_timeout(),
            ))
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
            router,
            publisher,
            shutdown,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` is cancelled, then drains in-flight requests (bounded) and
    /// closes the broker connection.
    pub async fn run_until_stopped(self, stop: CancellationToken) -> std::io::Result<()> {
        let addr = self.listener.local_addr()?;
        tracing::info!(%addr, "api listening");
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
