//! Human units for flags and environment variables: sizes such as `128MiB` and durations such as
//! `100ms` or `7d`, parsed by kept crates (`bytesize`, `humantime`). A plain number is still
//! accepted, in the unit the flag always had.

use std::time::Duration;

/// Parses a size: `128MiB`, `1.5 GiB`, `64KB` (powers of 1000), or a plain byte count.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(bytes) = text.parse::<u64>() {
        return Ok(bytes);
    }
    text.parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|err| format!("invalid size {text:?} ({err}): use e.g. 128MiB, 64KB or 1048576"))
}

/// Parses a duration such as `100ms`, `5s`, `2h` or `7d`; a plain number counts in `plain_unit`.
pub fn parse_duration(text: &str, plain_unit: Duration) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(count) = text.parse::<u32>() {
        return Ok(plain_unit * count);
    }
    humantime::parse_duration(text)
        .map_err(|err| format!("invalid duration {text:?} ({err}): use e.g. 100ms, 5s or 7d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_units_and_plain_byte_counts() {
        // Binary and decimal units, spaces and fractions parse; a plain number is bytes.
        assert_eq!(parse_size("128MiB"), Ok(128 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64KB"), Ok(64_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-5").is_err());
    }

    #[test]
    fn durations_take_units_and_plain_numbers_in_the_flags_unit() {
        // humantime's units parse; a plain number counts in the unit the caller names.
        let ms = Duration::from_millis(1);
        assert_eq!(parse_duration("100ms", ms), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("7d", ms), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("250", ms), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5", Duration::from_secs(1)), Ok(Duration::from_secs(5)));
        assert!(parse_duration("soon", ms).is_err());
    }
}
