//! The server's clock and its one timestamp format.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The current time, truncated to whole milliseconds so that it survives a round trip through
/// either database unchanged.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now)
}

/// RFC 3339, as every API response and export writes times.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}
