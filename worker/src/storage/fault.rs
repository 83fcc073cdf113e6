//! Telling a database failure that will pass (retry the same batch) from one that never will
//! (the rows themselves are refused: isolate and dead-letter them).

use sea_orm::{DbErr, RuntimeErr, sqlx};

/// What a failed write says about its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The database or the way to it failed: the same rows may succeed later.
    Transient,
    /// The rows broke a rule of the database (value out of range, too long for an index,
    /// constraint): retrying them can never succeed. Carries the database's message.
    Data(String),
}

/// SQLSTATE classes of errors about the data itself: 22 data exception (a value out of
/// range, an invalid text representation), 23 integrity constraint violation, 54 program
/// limit exceeded (an index row too large, too many columns or parameters).
const DATA_CLASSES: [&str; 3] = ["22", "23", "54"];

/// Classifies a failed write. Anything not known to be about the data (connection, pool,
/// serialization failure 40001, deadlock 40P01, cancelled statements 57014, shutdowns 57P01,
/// insufficient resources 53) is transient: retrying is safe, storage is idempotent.
pub fn classify(error: &DbErr) -> Fault {
    let runtime = match error {
        DbErr::Exec(e) | DbErr::Query(e) => e,
        DbErr::Json(m) | DbErr::Type(m) => return Fault::Data(m.clone()),
        _ => return Fault::Transient,
    };
    let RuntimeErr::SqlxError(sqlx_error) = runtime else {
        return Fault::Transient;
    };
    match sqlx_error.as_ref() {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if DATA_CLASSES.iter().any(|class| code.starts_with(class)) {
                Fault::Data(format!("{} (SQLSTATE {code})", db.message()))
            } else {
                Fault::Transient
            }
        }
        // The statement could not even be encoded (a value the driver refuses, too many bind
        // parameters): the same rows fail the same way every time.
        sqlx::Error::Encode(e) => Fault::Data(e.to_string()),
        sqlx::Error::InvalidArgument(m) | sqlx::Error::Protocol(m)
            if m.contains("argument") || m.contains("parameter") =>
        {
            Fault::Data(m.clone())
        }
        _ => Fault::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_transient_and_conversion_failures_are_data() {
        assert_eq!(
            classify(&DbErr::Conn(RuntimeErr::Internal("gone".into()))),
            Fault::Transient
        );
        assert_eq!(
            classify(&DbErr::Exec(RuntimeErr::SqlxError(std::sync::Arc::new(
                sqlx::Error::PoolTimedOut
            )))),
            Fault::Transient
        );
        assert!(matches!(
            classify(&DbErr::Json("bad".into())),
            Fault::Data(_)
        ));
    }
}
