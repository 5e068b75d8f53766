//! Researcher accounts and sign-in: argon2 password hashes, throttling of repeated failures
//! (counted in the database, so it holds across restarts and server instances), server-side
//! sessions that expire, and CSRF tokens.

use std::sync::OnceLock;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use time::OffsetDateTime;

use crate::domain::SessionToken;
use crate::researcher::{ResearcherError, audit};
use crate::store::research::{ResearchStore, ResearcherSession};

/// How long a sign-in lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Failed sign-ins for one name within [`FAILURE_WINDOW`] after which sign-in is refused until
/// the window has passed (even with the right password).
pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
pub const MIN_PASSWORD_LEN: usize = 10;

/// Why a sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("wrong name or password")]
    Invalid,
    #[error("too many failed sign-ins for this name: try again in 15 minutes")]
    Throttled,
    #[error(transparent)]
    Other(#[from] ResearcherError),
}

/// A researcher name: 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
pub fn check_username(username: &str) -> Result<(), ResearcherError> {
    let valid = |c: char| c.is_ascii_alphanumeric() || "._-@".contains(c);
    if username.is_empty() || username.len() > 64 || !username.chars().all(valid) {
        return Err(ResearcherError::Invalid(format!(
            "`{}` is not a valid researcher name: use 1 to 64 letters, digits, `.`, `_`, `-` or `@`",
            username.escape_debug()
        )));
    }
    Ok(())
}

/// The argon2id PHC string of `password` with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, ResearcherError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| ResearcherError::Other(anyhow::anyhow!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| ResearcherError::Other(anyhow::anyhow!("argon2: {e}")))
}

/// Whether `password` matches the stored PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash checked when the name is unknown, so an unknown name takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a password of anyone").unwrap_or_default())
}

/// Creates an account (the CLI's `researcher add`).
pub async fn add_researcher(
    research: &dyn ResearchStore,
    username: &str,
    password: &str,
    actor: &str,
    now: OffsetDateTime,
) -> Result<(), ResearcherError> {
    check_username(username)?;
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(ResearcherError::Invalid(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    let hash = hash_password(password)?;
    research.add_researcher(username, &hash, now).await?;
    audit(research, actor, "researcher_add", None, username, now).await
}

/// A fresh random token for CSRF protection: 128 bits, hex.
pub fn csrf_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// [`verify_password`] on Tokio's blocking pool: one argon2 check takes tens of milliseconds of
/// CPU and 19 MiB, and run on a runtime worker it would stall every request sharing that worker
/// while sign-ins (or guesses at them) arrive.
async fn verify_blocking(password: &str, phc: &str) -> bool {
    let (password, phc) = (password.to_owned(), phc.to_owned());
    tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .unwrap_or(false)
}

/// Checks the password (unless the name is throttled) and opens a session. Every attempt is
/// recorded in the audit log; failures also count towards throttling.
pub async fn sign_in(
    research: &dyn ResearchStore,
    username: &str,
    password: &str,
    now: OffsetDateTime,
) -> Result<(SessionToken, ResearcherSession), SignInError> {
    let name = username.trim();
    if name.contains('\0') {
        // No account can have such a name (`check_username`), and Postgres cannot store it in
        // the failure count or the audit log: refuse it as a wrong name, without a lookup.
        let _ = verify_blocking(password, dummy_hash()).await;
        return Err(SignInError::Invalid);
    }
    let since = now - FAILURE_WINDOW;
    let failures = research
        .sign_in_failures_since(name, since)
        .await
        .map_err(ResearcherError::from)?;
    if failures >= MAX_FAILURES {
        audit(
            research,
            name,
            "sign_in_throttled",
            None,
            "refused without checking the password",
            now,
        )
        .await?;
        return Err(SignInError::Throttled);
    }
    let stored = research
        .password_hash(name)
        .await
        .map_err(ResearcherError::from)?;
    let valid = match &stored {
        Some(phc) => verify_blocking(password, phc).await,
        None => {
            let _ = verify_blocking(password, dummy_hash()).await;
            false
        }
    };
    if !valid {
        research
            .record_sign_in_failure(name, now)
            .await
            .map_err(ResearcherError::from)?;
        audit(
            research,
            name,
            "sign_in_failed",
            None,
            format!("failure {} of {MAX_FAILURES}", failures + 1),
            now,
        )
        .await?;
        return Err(SignInError::Invalid);
    }
    research
        .clear_sign_in_failures(name)
        .await
        .map_err(ResearcherError::from)?;
    let token = SessionToken::generate();
    let session = ResearcherSession {
        token_hash: token.hash().0,
        username: name.to_owned(),
        csrf_token: csrf_token(),
        created_at: now,
        expires_at: now + SESSION_TTL,
    };
    research
        .create_researcher_session(&session)
        .await
        .map_err(ResearcherError::from)?;
    audit(research, name, "sign_in", None, "", now).await?;
    Ok((token, session))
}

/// The live session of a cookie token; an expired one is deleted and not returned.
pub async fn session_for(
    research: &dyn ResearchStore,
    token: &SessionToken,
    now: OffsetDateTime,
) -> Result<Option<ResearcherSession>, ResearcherError> {
    let hash = token.hash().0;
    match research.researcher_session(&hash).await? {
        Some(session) if session.expires_at > now => Ok(Some(session)),
        Some(_) => {
            research.delete_researcher_session(&hash).await?;
            Ok(None)
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterx", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }

    #[test]
    fn usernames_are_checked() {
        assert!(check_username("ada.lovelace@lab").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("a b").is_err());
    }
}
