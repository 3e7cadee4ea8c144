//! Log names: what a valid one is, and the `default` log an empty `log` field means.

/// The log every request without a `log` names. It always exists and cannot be deleted.
pub const DEFAULT_LOG: &str = "default";

/// The name the metrics give the sum of the logs without a label of their own
/// (`girok_*{log="_other"}`): no log may take it, or its series would mix with the sum.
pub const OTHER_LOGS: &str = "_other";

/// The longest name a log may have, in characters (all of them ASCII).
pub const MAX_NAME_LEN: usize = 200;

/// The log a request's `log` field names: the field itself, or [`DEFAULT_LOG`] when empty.
pub fn or_default(field: &str) -> &str {
    if field.is_empty() { DEFAULT_LOG } else { field }
}

/// Checks a log name: 1–[`MAX_NAME_LEN`] characters of `[A-Za-z0-9._-]`, not `.` or `..`, not
/// [`OTHER_LOGS`], case-sensitive. Such a name is also a safe directory name. On failure, says why.
pub fn validate(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("a log name must not be empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("a log name is at most 200 characters");
    }
    if name == "." || name == ".." {
        return Err("a log name must not be \".\" or \"..\"");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err("a log name may only hold the characters A-Z a-z 0-9 . _ -");
    }
    if name == OTHER_LOGS {
        return Err(
            "the log name \"_other\" is reserved for the metrics (the sum of unlabelled logs)",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_runs_of_a_safe_alphabet() {
        let good_names =
            ["default", "orders", "a", "A.b_c-9", "...", ".hidden", "_others", "_Other"];
        for good in good_names.iter().copied().chain([&*"x".repeat(200)]) {
            assert_eq!(validate(good), Ok(()), "{good:?}");
        }
        for bad in ["", ".", "..", "_other", "a/b", "a b", "é", "a\0", "x:y", &"x".repeat(201)] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_empty_field_means_the_default_log() {
        assert_eq!(or_default(""), "default");
        assert_eq!(or_default("orders"), "orders");
    }
}
