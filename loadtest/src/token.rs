//! The application a token speaks for. The API files every event under the token's `sub`,
//! so the ledger must look there: reading it from the token (not from a second setting)
//! means a token for another application cannot make every accepted event look lost.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// Why the token's subject could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("EYE_TOKEN is not a JWT (header.payload.signature)")]
    NotAJwt,
    #[error("EYE_TOKEN's payload is not base64url JSON with a string `sub`")]
    BadPayload,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

/// The `sub` claim, read without checking the signature: the API checks it, and a bad token
/// shows up at once as 401s.
pub fn subject(token: &str) -> Result<String, TokenError> {
    let mut parts = token.trim().split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::NotAJwt);
    };
    let json = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| TokenError::BadPayload)?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::BadPayload)?;
    Ok(claims.sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "eyJhbGciOiJIUzI1NiJ9.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn reads_the_subject() {
        let token = jwt(r#"{"sub":"loadtest","iss":"the-eye","scope":"events:write"}"#);
        assert_eq!(subject(&token), Ok("loadtest".to_owned()));
    }

    #[test]
    fn refuses_what_is_not_a_jwt() {
        assert_eq!(subject("opaque-token"), Err(TokenError::NotAJwt));
        assert_eq!(subject("a.b.c.d"), Err(TokenError::NotAJwt));
        assert_eq!(subject("a.%%%.c"), Err(TokenError::BadPayload));
        assert_eq!(subject(&jwt(r#"{"iss":"x"}"#)), Err(TokenError::BadPayload));
    }
}
