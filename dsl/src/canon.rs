//! Canonicalisation (SPEC §3.3). Placeholder until implemented.
