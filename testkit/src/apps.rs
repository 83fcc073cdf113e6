//! The application registry from a test: what `eye-api apps|tokens` do, on this test's
//! database, with the tests' signing key.

use eye_api::apps::{self, Issued};
use eye_api::store;
use uuid::Uuid;

use crate::{TestEnv, jwt};

impl TestEnv {
    /// Registers application `id` (no error if it exists).
    pub async fn register_app(&self, id: &str) {
        apps::create_app(&self.db, id, None, (None, None))
            .await
            .expect("register application");
    }

    /// Issues a token recorded in the registry, as `eye-api tokens issue` does.
    pub async fn issue_token(&self, app: &str, scopes: &[&str]) -> Issued {
        apps::issue_token(&self.db, &jwt(), app, scopes, None)
            .await
            .expect("issue token")
    }

    /// Revokes a token, as `eye-api tokens revoke` does.
    pub async fn revoke_token(&self, jti: Uuid) {
        assert!(
            store::apps::revoke_token(&self.db, jti)
                .await
                .expect("revoke"),
            "token {jti} was not revocable"
        );
    }

    /// Disables an application, as `eye-api apps disable` does.
    pub async fn disable_app(&self, id: &str) {
        apps::disable_app(&self.db, id).await.expect("disable");
    }

    /// Overrides an application's rate limit, as `eye-api apps limit` does.
    pub async fn set_rate_limit(&self, id: &str, per_sec: u32, burst: u32) {
        apps::set_limit(&self.db, id, Some(per_sec), Some(burst))
            .await
            .expect("set limit");
    }
}
