//! How `girok logs` prints logs: a header line, then one line per log, columns separated by at
//! least two spaces and no cell holding a space, so `awk '{print $4}'` picks a column.
//!
//! | column | what |
//! |--------|------|
//! | `NAME` | the log's name |
//! | `LOWEST` | the lowest offset it still holds |
//! | `NEXT` | the offset its next record will get |
//! | `SIZE` | bytes of record data it holds |
//! | `RETENTION-BYTES` | its `--retention-bytes` |
//! | `RETENTION-AGE` | its `--retention-age` |
//! | `SEGMENT-BYTES` | its `--segment-bytes` |
//!
//! A setting never given prints as `-`: the server's default applies. Sizes print in binary
//! units (`64MiB`; `1.5KiB` when not a whole number of the unit, rounded to one decimal), ages in
//! the largest unit that divides them (`7d`, `90m`), a retention of 0 as `unlimited`. With
//! `--bytes` every number is exact, in the units the server keeps: bytes, milliseconds, and 0
//! for unlimited.

use std::fmt::Write;

use girok::client::LogInfo;

/// How the numbers of the table print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Units {
    /// Binary size units and duration units, for reading.
    Human,
    /// Exact bytes and milliseconds, for scripts.
    Exact,
}

const HEADER: [&str; 7] =
    ["NAME", "LOWEST", "NEXT", "SIZE", "RETENTION-BYTES", "RETENTION-AGE", "SEGMENT-BYTES"];

/// The table of `logs`, header first, each line ending in `\n`.
pub(crate) fn render(logs: &[LogInfo], units: Units) -> String {
    aligned(HEADER, logs.iter().map(|log| row(log, units)))
}

/// `header` then `rows` as columns padded to their widest cell, two spaces apart, each line
/// ending in `\n` (no trailing spaces): the CLI's tables.
pub(crate) fn aligned<const N: usize>(
    header: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) -> String {
    let rows: Vec<[String; N]> = std::iter::once(header.map(String::from)).chain(rows).collect();
    let mut widths = [0; N];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut table = String::new();
    for row in &rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(widths) {
            let _ = write!(line, "{cell:width$}  ");
        }
        table.push_str(line.trim_end());
        table.push('\n');
    }
    table
}

fn row(log: &LogInfo, units: Units) -> [String; 7] {
    let settings = log.settings.unwrap_or_default();
    [
        log.name.clone(),
        log.lowest_offset.to_string(),
        log.next_offset.to_string(),
        size(log.size_bytes, units),
        setting(settings.retention_bytes, |bytes| retention(bytes, units, size)),
        setting(settings.retention_ms, |ms| retention(ms, units, age)),
        setting(settings.segment_bytes, |bytes| size(bytes, units)),
    ]
}

/// A stored setting; `-` when it was never given.
fn setting(value: Option<u64>, show: impl FnOnce(u64) -> String) -> String {
    value.map_or_else(|| "-".to_string(), show)
}

/// A retention limit, where 0 means none.
fn retention(value: u64, units: Units, show: fn(u64, Units) -> String) -> String {
    match (value, units) {
        (0, Units::Human) => "unlimited".to_string(),
        _ => show(value, units),
    }
}

/// `bytes` in the largest binary unit it fills.
fn size(bytes: u64, units: Units) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if units == Units::Exact {
        return bytes.to_string();
    }
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let exponent = bytes.ilog2() / 10;
    let (unit, name) = (1u64 << (10 * exponent), UNITS[exponent as usize - 1]);
    if bytes.is_multiple_of(unit) {
        format!("{}{name}", bytes / unit)
    } else {
        format!("{:.1}{name}", bytes as f64 / unit as f64)
    }
}

/// `ms` milliseconds in the largest unit that divides them.
fn age(ms: u64, units: Units) -> String {
    const UNITS: [(u64, &str); 4] =
        [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1_000, "s")];
    if units == Units::Exact {
        return ms.to_string();
    }
    match UNITS.iter().find(|(unit, _)| ms.is_multiple_of(*unit)) {
        Some((unit, name)) => format!("{}{name}", ms / unit),
        None => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_in_the_largest_binary_unit_they_fill() {
        // Whole units print bare, the rest to one decimal; --bytes prints the count itself.
        assert_eq!(size(0, Units::Human), "0B");
        assert_eq!(size(1023, Units::Human), "1023B");
        assert_eq!(size(64 << 20, Units::Human), "64MiB");
        assert_eq!(size(1536, Units::Human), "1.5KiB");
        assert_eq!(size(u64::MAX, Units::Human), "16.0EiB");
        assert_eq!(size(1536, Units::Exact), "1536");
    }

    #[test]
    fn ages_print_in_the_largest_unit_that_divides_them() {
        // Exact in every case, and in a form `--retention-age` reads back.
        assert_eq!(age(7 * 86_400_000, Units::Human), "7d");
        assert_eq!(age(90 * 60_000, Units::Human), "90m");
        assert_eq!(age(36 * 3_600_000, Units::Human), "36h");
        assert_eq!(age(1_500, Units::Human), "1500ms");
        assert_eq!(age(90 * 60_000, Units::Exact), "5400000");
    }

    #[test]
    fn the_table_aligns_its_columns_and_marks_defaults_and_unlimited() {
        // Absent settings print as `-`, a zero retention as `unlimited` (0 with --bytes), and
        // every line has as many whitespace-separated cells as the header.
        let logs = [
            LogInfo {
                name: "default".into(),
                next_offset: 3,
                size_bytes: 120,
                ..LogInfo::default()
            },
            LogInfo {
                name: "orders".into(),
                lowest_offset: 10,
                next_offset: 12,
                size_bytes: 3 << 20,
                settings: Some(girok::client::LogSettings {
                    retention_bytes: Some(0),
                    retention_ms: Some(7 * 86_400_000),
                    segment_bytes: Some(64 << 20),
                }),
                created_ms: 1,
            },
        ];
        assert_eq!(
            render(&logs, Units::Human),
            "NAME     LOWEST  NEXT  SIZE  RETENTION-BYTES  RETENTION-AGE  SEGMENT-BYTES\n\
             default  0       3     120B  -                -              -\n\
             orders   10      12    3MiB  unlimited        7d             64MiB\n"
        );
        let exact = render(&logs, Units::Exact);
        let last: Vec<&str> = exact.lines().last().unwrap().split_whitespace().collect();
        assert_eq!(last, ["orders", "10", "12", "3145728", "0", "604800000", "67108864"]);
    }
}
