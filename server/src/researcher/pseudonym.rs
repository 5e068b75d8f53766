//! Per-experiment pseudonyms: HMAC-SHA256 of the recruiter ID under a secret key stored with the
//! experiment (docs/design.md §3). The same person gets the same pseudonym in every export of one
//! experiment, different pseudonyms in different experiments, and nobody without the key can
//! link a pseudonym to a recruiter ID, even by trying every possible ID.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::store::Session;

const BLOCK: usize = 64;

/// HMAC-SHA256 (RFC 2104), written out because it is a few lines over `sha2`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// A fresh random key, hex encoded.
pub fn fresh_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Makes an experiment's pseudonyms.
#[derive(Clone)]
pub struct Pseudonyms {
    key: Vec<u8>,
}

impl std::fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonyms([key redacted])")
    }
}

impl Pseudonyms {
    /// From the stored hex key (any text is accepted as raw bytes if it is not hex).
    pub fn new(key: &str) -> Pseudonyms {
        Pseudonyms {
            key: hex::decode(key).unwrap_or_else(|_| key.as_bytes().to_vec()),
        }
    }

    /// `p-` and 16 hex digits (64 bits: collisions are negligible at study sizes).
    pub fn of(&self, identity: &str) -> String {
        let mac = hmac_sha256(&self.key, identity.as_bytes());
        format!("p-{}", hex::encode(&mac[..8]))
    }

    /// A session's pseudonym: of its recruiter ID, or of its session ID when it has none
    /// (imported or test sessions).
    pub fn of_session(&self, session: &Session) -> String {
        match &session.recruiter_id {
            Some(id) => self.of(&format!("recruiter:{id}")),
            None => self.of(&format!("session:{}", session.id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_cases() {
        // RFC 4231, test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn pseudonyms_are_stable_per_key_and_differ_between_keys() {
        let a = Pseudonyms::new(&fresh_key());
        let b = Pseudonyms::new(&fresh_key());
        assert_eq!(a.of("5f1e"), a.of("5f1e"));
        assert_ne!(a.of("5f1e"), a.of("5f1f"));
        assert_ne!(a.of("5f1e"), b.of("5f1e"));
        assert!(a.of("x").starts_with("p-") && a.of("x").len() == 18);
    }
}
