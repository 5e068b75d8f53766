//! Small domain types that parse once at the boundary: experiment slugs, session tokens and the
//! phases a participant goes through.

use std::fmt;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The URL name of an experiment: lowercase ASCII letters, digits and `-`, 1 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ExperimentSlug(String);

impl ExperimentSlug {
    pub fn parse(text: &str) -> Result<ExperimentSlug, String> {
        let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if text.is_empty() || text.len() > 64 {
            return Err(format!("`{text}` must be 1 to 64 characters long"));
        }
        if !text.chars().all(valid_char) || text.starts_with('-') {
            return Err(format!(
                "`{}` may contain only lowercase letters a-z, digits and `-` (not first)",
                text.escape_debug()
            ));
        }
        Ok(ExperimentSlug(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExperimentSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A participant's secret session token: 128 random bits, written as 32 lowercase hex digits.
/// Only its SHA-256 hash is stored, so a database leak does not hand out live sessions.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// A fresh token from the thread-local CSPRNG (ChaCha, seeded from the operating system).
    pub fn generate() -> SessionToken {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        SessionToken(hex::encode(bytes))
    }

    /// Accepts exactly 32 lowercase hex digits; anything else cannot be a token we issued.
    pub fn parse(text: &str) -> Option<SessionToken> {
        let well_formed = text.len() == 32
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| SessionToken(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value stored in the database.
    pub fn hash(&self) -> TokenHash {
        TokenHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken([redacted])")
    }
}

/// SHA-256 of a session token, hex encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash(pub String);

/// The parts of a study, in the order a participant meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Consent,
    Tutorial,
    Practice,
    Instructions,
    Tasks,
    Questionnaire,
    Complete,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Consent,
        Phase::Tutorial,
        Phase::Practice,
        Phase::Instructions,
        Phase::Tasks,
        Phase::Questionnaire,
        Phase::Complete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Consent => "consent",
            Phase::Tutorial => "tutorial",
            Phase::Practice => "practice",
            Phase::Instructions => "instructions",
            Phase::Tasks => "tasks",
            Phase::Questionnaire => "questionnaire",
            Phase::Complete => "complete",
        }
    }

    pub fn parse(text: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|phase| phase.as_str() == text)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A phase equals its stored name, so rows read back can be checked against API JSON.
impl PartialEq<str> for Phase {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Phase {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Phase {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

/// Where a session stands. Stored as text; mapped onto Prolific's submission states in docs/api.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Taking part (Prolific: ACTIVE).
    Active,
    /// Declined consent (Prolific: RETURNED).
    Declined,
    /// Finished and given the completion code (Prolific: AWAITING REVIEW).
    Completed,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "active",
            SessionStatus::Declined => "declined",
            SessionStatus::Completed => "completed",
        }
    }

    pub fn parse(text: &str) -> Option<SessionStatus> {
        [
            SessionStatus::Active,
            SessionStatus::Declined,
            SessionStatus::Completed,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// How a trial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialOutcome {
    Submitted,
    Skipped,
}

impl TrialOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            TrialOutcome::Submitted => "submitted",
            TrialOutcome::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<TrialOutcome> {
        match text {
            "submitted" => Some(TrialOutcome::Submitted),
            "skipped" => Some(TrialOutcome::Skipped),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_accept_lowercase_words_and_reject_the_rest() {
        assert!(ExperimentSlug::parse("correa2025").is_ok());
        assert!(ExperimentSlug::parse("my-study-2").is_ok());
        for bad in ["", "Correa", "a b", "-x", "x/y", &"a".repeat(65)] {
            assert!(ExperimentSlug::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn tokens_are_32_hex_digits_and_hash_to_64() {
        let token = SessionToken::generate();
        assert_eq!(token.expose().len(), 32);
        assert_eq!(SessionToken::parse(token.expose()), Some(token.clone()));
        assert_eq!(token.hash().0.len(), 64);
        assert_ne!(SessionToken::generate().expose(), token.expose());
        assert!(SessionToken::parse("ABCDEF0123456789abcdef0123456789").is_none());
        assert!(SessionToken::parse("abc").is_none());
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn phases_round_trip_through_text() {
        for phase in Phase::ALL {
            assert_eq!(Phase::parse(phase.as_str()), Some(phase));
        }
    }
}
