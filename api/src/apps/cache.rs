//! The revocation state in memory: which applications exist and are enabled, which token
//! ids are revoked, and each application's token bucket. A background task reloads it from
//! PostgreSQL every `EYE_AUTH_REFRESH_MS` and swaps an `Arc`, so a request checks it with
//! no I/O, and a revocation reaches every replica within one refresh. If it cannot be
//! reloaded for `EYE_AUTH_MAX_STALENESS_MS`, requests are refused (503): never fail open.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::entity::{application, token};
use super::limits::{Limit, Limiter};
use crate::auth::{AuthError, Claims};
use crate::error::ApiError;
use crate::settings::AccessSettings;

/// Revoked tokens stay listed this long past their expiry (covers the verifier's leeway).
const EXPIRED_GRACE: chrono::Duration = chrono::Duration::minutes(5);

/// An application as the api sees it between two reloads.
#[derive(Debug)]
pub struct AppEntry {
    pub disabled: bool,
    pub limiter: Limiter,
}

/// One reload's worth of state.
struct Snapshot {
    apps: HashMap<String, Arc<AppEntry>>,
    revoked: HashSet<String>,
    loaded_at: Instant,
}

/// The shared, swappable revocation state.
pub struct AuthCache {
    current: RwLock<Option<Arc<Snapshot>>>,
    settings: AccessSettings,
}

impl AuthCache {
    /// Empty: every request is refused (503) until the first reload succeeds.
    pub fn new(settings: AccessSettings) -> Self {
        Self {
            current: RwLock::new(None),
            settings,
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
    /// revoked, and the state fresh. No I/O.
    pub fn admit(&self, claims: &Claims) -> Result<Arc<AppEntry>, ApiError> {
        let snapshot = self
            .snapshot()
            .filter(|s| s.loaded_at.elapsed() <= self.settings.max_staleness())
            .ok_or(ApiError::AuthStateStale)?;
        let app = snapshot
            .apps
            .get(&claims.sub)
            .ok_or(AuthError::UnknownApp)?;
        if app.disabled {
            return Err(AuthError::AppDisabled.into());
        }
        if snapshot.revoked.contains(&claims.jti) {
            return Err(AuthError::Revoked.into());
        }
        Ok(app.clone())
    }

    /// Reloads from the database; keeps each application's bucket unless its limit changed.
    pub async fn refresh(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let apps = application::Entity::find().all(db).await?;
        let cutoff = chrono::Utc::now() - EXPIRED_GRACE;
        let revoked: Vec<Uuid> = token::Entity::find()
            .select_only()
            .column(token::Column::Jti)
            .filter(token::Column::RevokedAt.is_not_null())
            .filter(
                Condition::any()
                    .add(token::Column::ExpiresAt.is_null())
                    .add(token::Column::ExpiresAt.gt(cutoff)),
            )
            .into_tuple()
            .all(db)
            .await?;
        let previous = self.snapshot();
        let apps = apps
            .into_iter()
            .map(|app| {
                let limit = self.limit_of(&app);
                let kept = previous
                    .as_ref()
                    .and_then(|p| p.apps.get(&app.id))
                    .filter(|e| {
                        e.limiter.limit() == limit && e.disabled == app.disabled_at.is_some()
                    })
                    .cloned();
                let entry = kept.unwrap_or_else(|| {
                    Arc::new(AppEntry {
                        disabled: app.disabled_at.is_some(),
                        limiter: Limiter::new(limit, self.settings.replicas),
                    })
                });
                (app.id, entry)
            })
            .collect();
        let snapshot = Snapshot {
            apps,
            revoked: revoked.iter().map(Uuid::to_string).collect(),
            loaded_at: Instant::now(),
        };
        if let Ok(mut current) = self.current.write() {
            *current = Some(Arc::new(snapshot));
        }
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
    pub fn spawn_refresher(self: Arc<Self>, db: DatabaseConnection, stop: CancellationToken) {
        let every = self.settings.refresh_every();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                // Bounded, so that a hung connection cannot hold back the next attempt.
                match tokio::time::timeout(every.max(Duration::from_secs(1)), self.refresh(&db))
                    .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot reload the revocation state"),
                    Err(_) => tracing::warn!("reloading the revocation state timed out"),
                }
            }
        });
    }
}
