//! Bearer-token authentication: JWTs checked with the `jsonwebtoken` crate.
//!
//! The gateway is where tokens are checked *once*, so the services behind it can trust a
//! plain header (`X-Authenticated-Subject`) that only the gateway sets — the gateway removes
//! any copy a client sends. Everything that can go wrong with a JWT is refused here:
//! a missing or malformed token, a bad signature, `exp` in the past, `nbf` in the future,
//! the wrong `iss` or `aud`, `alg: none`, and algorithm confusion.
//!
//! *Algorithm confusion* is the classic JWT hole: a verifier that takes the algorithm from
//! the token and a key from its config will, for a token that says `HS256`, use the RSA
//! *public* key as an HMAC secret — and anyone can sign with a public key. Here the
//! algorithm picks the key *kind* (an HS256 token can only be checked with the HS256
//! secret, an RS256 token only with an RSA key) and each check allows exactly one algorithm.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::AuthConfig;

/// The claims the gateway reads; the rest of the token is the upstream's business.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who the token speaks for.
    pub sub: String,
    /// Space-separated scopes (`"orders payments"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Expiry (seconds since the Unix epoch); kept so a cached token still expires.
    pub exp: u64,
    /// Not-before, if the token has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

impl Claims {
    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|scopes| scopes.split_whitespace().any(|s| s == scope))
    }
}

// ANCHOR: auth_error
/// Why a request was not authenticated (all of them are 401s).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("this route needs a bearer token in the Authorization header")]
    Missing,
    /// Not `Bearer <jwt>`, or not a JWT (this includes `alg: none`, which has no place in
    /// the list of algorithms the decoder knows).
    #[error("the bearer token is malformed: {0}")]
    Malformed(String),
    /// An algorithm the gateway has no key for, or does not accept.
    #[error("tokens signed with {0} are not accepted here")]
    AlgorithmRefused(String),
    /// An RS256 token whose `kid` is not in the key set, even after a reload.
    #[error("no key with kid {0:?} is known (the key set was reloaded at most once)")]
    UnknownKey(String),
    /// The signature does not match: tampered, or signed with another key.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` has not come yet.
    #[error("the token is not valid yet (nbf is in the future)")]
    NotYetValid,
    /// `iss` is not ours.
    #[error("the token was issued by someone else (iss)")]
    WrongIssuer,
    /// `aud` is not us.
    #[error("the token is meant for another audience (aud)")]
    WrongAudience,
    /// Any other validation failure (a missing claim, a claim of the wrong type...).
    #[error("the token is invalid: {0}")]
    Invalid(String),
}
// ANCHOR_END: auth_error

/// A problem with the key material in the configuration.
#[derive(Debug, Error)]
pub enum KeyError {
    /// A key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The key file's path, as configured.
        path: PathBuf,
        #[allow(missing_docs)]
        source: std::io::Error,
    },
    /// A key could not be parsed.
    #[error("invalid key in {path}: {reason}")]
    Parse {
        /// The key file's path, as configured.
        path: PathBuf,
        /// What the key parser refused in it.
        reason: String,
    },
}

/// Checks bearer tokens against the configured keys.
pub struct Authenticator {
    config: AuthConfig,
    hs256: Option<DecodingKey>,
    rs256: Option<DecodingKey>,
    jwks: RwLock<HashMap<String, KeyEntry>>,
    last_reload: Mutex<Option<tokio::time::Instant>>,
    reloads: AtomicU64,
    verified: Mutex<HashMap<String, Verified>>,
}

/// A JWKS key: the decoder, and the JWK it came from (to tell a changed key).
struct KeyEntry {
    key: DecodingKey,
    jwk: Jwk,
}

/// A token that passed verification, and the JWKS key that verified it, if any: a reload that
/// removes or replaces that key evicts the token.
struct Verified {
    claims: Claims,
    kid: Option<String>,
}

/// How many verified tokens are remembered; the cache is emptied when it fills up.
const VERIFIED_CACHE_CAPACITY: usize = 4096;

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuer", &self.config.issuer)
            .field("audience", &self.config.audience)
            .field("kids", &self.jwks.read().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Loads the keys named in `config`.
    pub fn new(config: AuthConfig) -> Result<Self, KeyError> {
        let hs256 = config
            .hs256_secret
            .as_deref()
            .map(|secret| DecodingKey::from_secret(secret.as_bytes()));
        let rs256 = match &config.rs256_public_key_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| KeyError::Read {
                    path: path.clone(),
                    source,
                })?;
                Some(
                    DecodingKey::from_rsa_pem(&pem).map_err(|error| KeyError::Parse {
                        path: path.clone(),
                        reason: error.to_string(),
                    })?,
                )
            }
            None => None,
        };
        let jwks = match &config.jwks_file {
            Some(path) => {
                let text = std::fs::read(path).map_err(|source| KeyError::Read {
                    path: path.clone(),
                    source,
                })?;
                parse_jwks(&text).map_err(|reason| KeyError::Parse {
                    path: path.clone(),
                    reason,
                })?
            }
            None => HashMap::new(),
        };
        Ok(Self {
            config,
            hs256,
            rs256,
            jwks: RwLock::new(jwks),
            last_reload: Mutex::new(None),
            reloads: AtomicU64::new(0),
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// How many times the JWKS file was re-read since startup.
    pub fn jwks_reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    // ANCHOR: authenticate
    /// Checks an `Authorization` header value and returns the token's claims.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Claims, AuthError> {
        let value = authorization.ok_or(AuthError::Missing)?;
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or_else(|| AuthError::Malformed("expected `Bearer <token>`".to_owned()))?;
        // A token already verified needs only its time window re-checked: the signature
        // cannot have changed, since the whole token (signature included) is the key.
        // This saves an HMAC or RSA verification per request for clients that reuse tokens.
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(verified) = self.verified.lock().get(token) {
            let claims = &verified.claims;
            return self.check_window(claims, now).map(|()| claims.clone());
        }
        // The header is read unverified, only to choose the key. Its `alg` must then agree
        // with the key's kind and is the *only* algorithm the check allows.
        let header =
            decode_header(token).map_err(|error| AuthError::Malformed(error.to_string()))?;
        let mut from_jwks = None;
        let key = match header.alg {
            Algorithm::HS256 => self
                .hs256
                .clone()
                .ok_or_else(|| AuthError::AlgorithmRefused("HS256".to_owned()))?,
            Algorithm::RS256 => match header.kid.as_deref() {
                Some(kid) => {
                    from_jwks = Some(kid.to_owned());
                    self.key_for_kid(kid).await?
                }
                None => self
                    .rs256
                    .clone()
                    .ok_or_else(|| AuthError::UnknownKey(String::new()))?,
            },
            other => return Err(AuthError::AlgorithmRefused(format!("{other:?}"))),
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.config.leeway_secs;
        let data =
            decode::<Claims>(token, &key, &validation).map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
                ErrorKind::InvalidAudience => AuthError::WrongAudience,
                ErrorKind::InvalidAlgorithm => {
                    AuthError::AlgorithmRefused(format!("{:?}", header.alg))
                }
                ErrorKind::InvalidToken
                | ErrorKind::Base64(_)
                | ErrorKind::Json(_)
                | ErrorKind::Utf8(_) => AuthError::Malformed(error.to_string()),
                _ => AuthError::Invalid(error.to_string()),
            })?;
        let mut verified = self.verified.lock();
        if verified.len() >= VERIFIED_CACHE_CAPACITY {
            verified.clear();
        }
        // A reload may have removed the key while this token was being checked.
        if from_jwks
            .as_ref()
            .is_some_and(|kid| !self.jwks.read().contains_key(kid))
        {
            return Ok(data.claims);
        }
        verified.insert(
            token.to_owned(),
            Verified {
                claims: data.claims.clone(),
                kid: from_jwks,
            },
        );
        Ok(data.claims)
    }
    // ANCHOR_END: authenticate

    /// `exp` and `nbf` against `now`, with the same leeway `jsonwebtoken` applies.
    fn check_window(&self, claims: &Claims, now: u64) -> Result<(), AuthError> {
        let leeway = self.config.leeway_secs;
        if claims.exp.saturating_add(leeway) < now {
            return Err(AuthError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(leeway))
        {
            return Err(AuthError::NotYetValid);
        }
        Ok(())
    }

    // ANCHOR: jwks_reload
    /// The RSA key named `kid`, re-reading the key set once if it is unknown.
    ///
    /// Key rotation publishes the new key before tokens signed with it appear, so an
    /// unknown `kid` usually means "reload". But anyone can put any `kid` in a token: the
    /// reload is rate-limited (`jwks_min_reload_ms`), or a flood of made-up kids would turn
    /// into a flood of requests to the identity provider.
    async fn key_for_kid(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        if let Some(entry) = self.jwks.read().get(kid) {
            return Ok(entry.key.clone());
        }
        let Some(path) = self.config.jwks_file.clone() else {
            return Err(AuthError::UnknownKey(kid.to_owned()));
        };
        {
            let now = tokio::time::Instant::now();
            let mut last = self.last_reload.lock();
            let min_gap = Duration::from_millis(self.config.jwks_min_reload_ms);
            if last.is_some_and(|at| now.duration_since(at) < min_gap) {
                return Err(AuthError::UnknownKey(kid.to_owned()));
            }
            *last = Some(now);
        }
        self.reloads.fetch_add(1, Ordering::Relaxed);
        match tokio::fs::read(&path).await {
            Ok(text) => match parse_jwks(&text) {
                Ok(keys) => self.replace_keys(keys),
                Err(reason) => {
                    tracing::warn!(path = %path.display(), %reason, "JWKS reload failed; keeping the old keys")
                }
            },
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "JWKS reload failed; keeping the old keys")
            }
        }
        self.jwks
            .read()
            .get(kid)
            .map(|entry| entry.key.clone())
            .ok_or_else(|| AuthError::UnknownKey(kid.to_owned()))
    }
    // ANCHOR_END: jwks_reload

    // ANCHOR: replace_keys
    /// Installs a reloaded key set. A key that was removed or replaced is one the identity
    /// provider no longer stands behind (it may have leaked): the tokens it verified leave
    /// the cache with it, so the next request with one is checked again, and refused.
    fn replace_keys(&self, keys: HashMap<String, KeyEntry>) {
        let mut jwks = self.jwks.write();
        let gone: Vec<String> = jwks
            .iter()
            .filter(|(kid, old)| keys.get(*kid).is_none_or(|new| new.jwk != old.jwk))
            .map(|(kid, _)| kid.clone())
            .collect();
        *jwks = keys;
        drop(jwks);
        if !gone.is_empty() {
            let mut verified = self.verified.lock();
            let before = verified.len();
            verified.retain(|_, token| token.kid.as_ref().is_none_or(|kid| !gone.contains(kid)));
            tracing::info!(
                kids = ?gone,
                evicted = before - verified.len(),
                "keys left the key set; the tokens they verified were evicted"
            );
        }
    }
    // ANCHOR_END: replace_keys
}

/// The RSA keys of a JWKS document by `kid` (keys without a `kid` or of other kinds are
/// skipped: they could never be selected).
fn parse_jwks(text: &[u8]) -> Result<HashMap<String, KeyEntry>, String> {
    let set: JwkSet = serde_json::from_slice(text).map_err(|error| error.to_string())?;
    Ok(set
        .keys
        .into_iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            Some((kid, KeyEntry { key, jwk }))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn authenticator() -> Authenticator {
        Authenticator::new(AuthConfig {
            issuer: "i".to_owned(),
            audience: "a".to_owned(),
            hs256_secret: Some("s".repeat(32)),
            rs256_public_key_file: None,
            jwks_file: None,
            jwks_min_reload_ms: 10_000,
            leeway_secs: 5,
            subject_header: "x-authenticated-subject".to_owned(),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_cached_token_still_expires() {
        let auth = authenticator();
        let claims = crate::tokens::TokenClaims::new("alice", "i", "a", 60);
        let token = crate::tokens::sign_hs256(&claims, &"s".repeat(32)).unwrap();
        let header = format!("Bearer {token}");
        let verified = auth.authenticate(Some(&header)).await.unwrap();
        assert_eq!(auth.verified.lock().len(), 1);
        // The cached copy answers the second time, and its window is still checked.
        assert_eq!(auth.authenticate(Some(&header)).await.unwrap(), verified);
        assert_eq!(auth.check_window(&verified, verified.exp + 5), Ok(()));
        assert_eq!(
            auth.check_window(&verified, verified.exp + 6),
            Err(AuthError::Expired)
        );
        let early = Claims {
            nbf: Some(verified.exp),
            ..verified.clone()
        };
        assert_eq!(
            auth.check_window(&early, verified.exp - 6),
            Err(AuthError::NotYetValid)
        );
    }
}
