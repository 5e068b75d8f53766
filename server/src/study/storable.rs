//! Input that neither database can hold. Postgres `text` and `jsonb` refuse U+0000 while SQLite
//! keeps it, so the use cases refuse it before it reaches the store: both backends then answer
//! the same, and a participant's input is never a server fault.

use serde_json::Value;

use super::error::StudyError;

/// Whether `text` can be stored by both backends.
pub(super) fn storable(text: &str) -> bool {
    !text.contains('\0')
}

/// Whether every key and string inside `value` can be stored by both backends.
pub(super) fn storable_json(value: &Value) -> bool {
    match value {
        Value::String(text) => storable(text),
        Value::Array(items) => items.iter().all(storable_json),
        Value::Object(map) => map
            .iter()
            .all(|(key, value)| storable(key) && storable_json(value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
    }
}

/// A 400 naming the field, for text that cannot be stored.
pub(super) fn require_storable(field: &str, text: &str) -> Result<(), StudyError> {
    if storable(text) {
        Ok(())
    } else {
        Err(StudyError::invalid(format!(
            "{field} contains U+0000, which cannot be stored"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_is_found_in_nested_keys_and_values() {
        assert!(storable_json(&json!({"a": [1, "b", {"c": null}]})));
        assert!(!storable_json(&json!({"a": [1, "b\u{0}"]})));
        assert!(!storable_json(&json!({"a": {"k\u{0}": 1}})));
        assert!(!storable("x\u{0}"));
    }
}
