//! Issuing tokens, for the demo and the tests (a real gateway only verifies them).
//!
//! In production an identity provider (Keycloak, Auth0, Cognito...) signs tokens; the
//! gateway only holds the public keys. The demo plays both parts so it can show a valid
//! call, an expired token and a missing scope without any external service.

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde::Serialize;

/// The claims of a token issued here.
#[derive(Clone, Debug, Serialize)]
pub struct TokenClaims {
    /// Subject (`sub`): who the token speaks for; the gateway requires it.
    pub sub: String,
    /// Issuer (`iss`): the gateway accepts only its configured issuer.
    pub iss: String,
    /// Audience (`aud`): the gateway accepts only its configured audience.
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Not before, seconds since the Unix epoch.
    pub nbf: u64,
    /// Issued at.
    pub iat: u64,
    /// Space-separated scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl TokenClaims {
    /// Claims for `sub`, valid from now for `ttl_secs`.
    pub fn new(sub: &str, iss: &str, aud: &str, ttl_secs: u64) -> Self {
        let now = jsonwebtoken::get_current_timestamp();
        Self {
            sub: sub.to_owned(),
            iss: iss.to_owned(),
            aud: aud.to_owned(),
            exp: now + ttl_secs,
            nbf: now,
            iat: now,
            scope: None,
        }
    }
}

/// Signs `claims` with an HS256 secret.
pub fn sign_hs256(
    claims: &TokenClaims,
    secret: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// Signs `claims` with an RSA private key (PEM), naming the key `kid` if given.
pub fn sign_rs256(
    claims: &TokenClaims,
    private_pem: &[u8],
    kid: Option<&str>,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &EncodingKey::from_rsa_pem(private_pem)?)
}
