//! The revocation state in memory: which applications exist and are enabled, which token
//! ids are revoked, and each application's token bucket. A background task reloads it from
//! PostgreSQL every `EYE_AUTH_REFRESH_MS` and swaps an `Arc`, so a request checks it with
//! no I/O, and a revocation reaches every replica within one refresh. If it cannot be
//! reloaded for `EYE_AUTH_MAX_STALENESS_MS`, requests are refused (503): never fail open.
//!
//! An application registered since the last reload (the token `make generatetoken` just
//! printed) is looked up on its first request: one query per application however many
//! requests miss at once, and an unknown one is remembered as unknown for one refresh
//! interval, so tokens for it cannot flood the database. All of this runs on the
//! ingestion pool, which reads never touch (its queries: [`crate::store::apps`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use eye_core::entity::application;
use sea_orm::DatabaseConnection;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::limits::{Limit, Limiter};
use crate::auth::{AuthError, Claims};
use crate::error::ApiError;
use crate::settings::AccessSettings;
use crate::store::{self, StoreError};

/// Revoked tokens stay listed this long past their expiry (covers the verifier's leeway).
const EXPIRED_GRACE: chrono::Duration = chrono::Duration::minutes(5);

/// Longest a request waits for the lookup of an application not loaded yet (then 503).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);

/// Most application ids remembered between reloads (found or unknown); past it the least
/// used are forgotten, so a stream of distinct ids cannot grow the cache.
const LOOKUP_CACHE_CAPACITY: u64 = 10_000;

/// Connections of the ingestion pool the reload and the readiness probe
/// ([`crate::store::health::Probe`]) keep for themselves: lookups get the rest.
const RESERVED_CONNECTIONS: u32 = 2;

/// An application as the api sees it between two reloads.
#[derive(Debug)]
pub struct AppEntry {
    pub disabled: bool,
    pub limiter: Limiter,
}

/// One reload's worth of state.
struct Snapshot {
    apps: HashMap<String, Arc<AppEntry>>,
    revoked: Arc<HashSet<String>>,
    loaded_at: Instant,
}

/// A lookup that did not answer: the request gets 503, and nothing is remembered.
#[derive(Debug, thiserror::Error)]
enum LookupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("timed out")]
    Timeout,
}

/// The shared, swappable revocation state.
pub struct AuthCache {
    current: RwLock<Option<Arc<Snapshot>>>,
    settings: AccessSettings,
    /// The ingestion pool (reloads and lookups; never a read).
    db: DatabaseConnection,
    /// Applications looked up since they were missing from the snapshot, found (`Some`)
    /// or not, for one refresh interval: concurrent misses of one id share one query.
    lookups: moka::future::Cache<String, Option<Arc<AppEntry>>>,
    /// Lookups of distinct applications at once, so they never take the reload's connection.
    lookup_permits: Semaphore,
    /// Queries made by lookups (tests and `eye_auth_app_lookups_total`).
    lookups_made: AtomicU64,
    /// Events accepted per minute and tokens' last use, flushed by the refresher.
    pub usage: super::usage::Usage,
}

impl AuthCache {
    /// Empty: every request is refused (503) until the first reload succeeds. `db` is the
    /// ingestion pool, of `settings.database_connections` connections.
    pub fn new(settings: AccessSettings, db: DatabaseConnection) -> Self {
        let lookup_permits = settings
            .database_connections
            .saturating_sub(RESERVED_CONNECTIONS)
            .max(1);
        Self {
            current: RwLock::new(None),
            lookups: moka::future::Cache::builder()
                .max_capacity(LOOKUP_CACHE_CAPACITY)
                .time_to_live(settings.refresh_every())
                .build(),
            lookup_permits: Semaphore::new(lookup_permits as usize),
            lookups_made: AtomicU64::new(0),
            usage: super::usage::Usage::default(),
            settings,
            db,
        }
    }

    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current.read().ok().and_then(|s| s.clone())
    }

    /// Whether the state is recent enough to trust (readiness reports it).
    pub fn is_fresh(&self) -> bool {
        self.snapshot()
            .is_some_and(|s| s.loaded_at.elapsed() <= self.settings.max_staleness())
    }

    /// Admits a verified token: its application registered and enabled, its `jti` not
    /// revoked, and the state fresh. No I/O, but for an application missing from the
    /// snapshot (registered since the last reload, or unknown): see [`Self::look_up`].
    pub async fn admit(&self, claims: &Claims) -> Result<Arc<AppEntry>, ApiError> {
        let snapshot = self
            .snapshot()
            .filter(|s| s.loaded_at.elapsed() <= self.settings.max_staleness())
            .ok_or(ApiError::AuthStateStale)?;
        let app = match snapshot.apps.get(&claims.sub) {
            Some(app) => app.clone(),
            None => self
                .look_up(&claims.sub)
                .await?
                .ok_or(AuthError::UnknownApp)?,
        };
        if app.disabled {
            return Err(AuthError::AppDisabled.into());
        }
        if snapshot.revoked.contains(&claims.jti) {
            return Err(AuthError::Revoked.into());
        }
        self.usage.token_used(&claims.jti);
        Ok(app)
    }

    /// The application `app_id` from the database, None if it is not registered. Single
    /// flight: concurrent callers for one id wait for the same query; its answer (found or
    /// not) is remembered for one refresh interval, by then the reload knows the rest.
    async fn look_up(&self, app_id: &str) -> Result<Option<Arc<AppEntry>>, ApiError> {
        let query = async {
            let found = tokio::time::timeout(LOOKUP_TIMEOUT, async {
                let _permit = self.lookup_permits.acquire().await;
                self.lookups_made.fetch_add(1, Ordering::Relaxed);
                store::apps::find_app(&self.db, app_id).await
            })
            .await
            .map_err(|_| LookupError::Timeout)??;
            let result = if found.is_some() { "found" } else { "unknown" };
            metrics::counter!("eye_auth_app_lookups_total", "result" => result).increment(1);
            Ok::<_, LookupError>(found.map(|app| self.adopt(app)))
        };
        self.lookups
            .try_get_with_by_ref(app_id, query)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, app_id, "cannot look the application up");
                metrics::counter!("eye_auth_app_lookups_total", "result" => "error").increment(1);
                ApiError::AuthStateStale
            })
    }

    /// Queries made so far to look up applications missing from the snapshot.
    pub fn lookups_made(&self) -> u64 {
        self.lookups_made.load(Ordering::Relaxed)
    }

    /// Puts a looked-up application into the current snapshot, so that its next requests
    /// find it there (and keep its bucket across reloads); returns its entry.
    fn adopt(&self, app: application::Model) -> Arc<AppEntry> {
        let entry = Arc::new(self.entry_for(&app));
        let Ok(mut current) = self.current.write() else {
            return entry;
        };
        let Some(snapshot) = current.as_ref() else {
            return entry;
        };
        if let Some(existing) = snapshot.apps.get(&app.id) {
            return existing.clone();
        }
        let mut apps = snapshot.apps.clone();
        apps.insert(app.id, entry.clone());
        *current = Some(Arc::new(Snapshot {
            apps,
            revoked: snapshot.revoked.clone(),
            loaded_at: snapshot.loaded_at,
        }));
        entry
    }

    fn entry_for(&self, app: &application::Model) -> AppEntry {
        AppEntry {
            disabled: app.disabled_at.is_some(),
            limiter: Limiter::new(self.limit_of(app), self.settings.replicas),
        }
    }

    /// Reloads from the database; keeps each application's bucket unless its limit changed.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let apps = store::apps::list_apps(&self.db).await?;
        let cutoff = chrono::Utc::now() - EXPIRED_GRACE;
        let revoked = store::apps::revoked_tokens(&self.db, cutoff).await?;
        let revoked = Arc::new(revoked.iter().map(Uuid::to_string).collect());
        // Read and replaced under one lock, so that an application adopted by a lookup
        // meanwhile keeps its entry (and its bucket).
        let Ok(mut current) = self.current.write() else {
            return Ok(());
        };
        let apps = apps
            .into_iter()
            .map(|app| {
                let kept = current
                    .as_ref()
                    .and_then(|p| p.apps.get(&app.id))
                    .filter(|e| {
                        e.limiter.limit() == self.limit_of(&app)
                            && e.disabled == app.disabled_at.is_some()
                    })
                    .cloned();
                let entry = kept.unwrap_or_else(|| Arc::new(self.entry_for(&app)));
                (app.id, entry)
            })
            .collect();
        *current = Some(Arc::new(Snapshot {
            apps,
            revoked,
            loaded_at: Instant::now(),
        }));
        Ok(())
    }

    fn limit_of(&self, app: &application::Model) -> Limit {
        let positive = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).filter(|v| *v > 0);
        Limit {
            per_sec: positive(app.rate_per_sec).unwrap_or(self.settings.rate_per_sec),
            burst: positive(app.rate_burst).unwrap_or(self.settings.rate_burst),
        }
    }

    /// Reloads every refresh interval until `stop`; a failed reload is logged and retried
    /// at the next tick (the staleness bound turns requests away meanwhile).
    pub fn spawn_refresher(self: Arc<Self>, stop: CancellationToken) {
        let every = self.settings.refresh_every();
        tokio::spawn(async move {
            // The first reload one interval from now: `Application::build` has just loaded.
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => {
                        let _ = self.usage.flush(&self.db).await;
                        return;
                    }
                    _ = ticks.tick() => {}
                }
                if let Err(e) = self.usage.flush(&self.db).await {
                    tracing::warn!(error = %e, "cannot record accepted counts and token use");
                }
                // Bounded, so that a hung connection cannot hold back the next attempt.
                match tokio::time::timeout(every.max(Duration::from_secs(1)), self.refresh()).await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot reload the revocation state"),
                    Err(_) => tracing::warn!("reloading the revocation state timed out"),
                }
            }
        });
    }
}
