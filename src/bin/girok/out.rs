//! Lines to stdout that may fail: when the reader goes away (`girok tail | head -3`) the command
//! ends quietly with success, as `cat` and `seq` do, rather than panicking as `println!` would.

use std::fmt::Display;
use std::io::{self, Write};

use crate::CliError;

/// Writes `text` and a newline to stdout (line-buffered, so it is out at once).
pub(crate) fn line(text: impl Display) -> Result<(), CliError> {
    writeln!(io::stdout(), "{text}").map_err(CliError::Stdout)
}

/// Writes `bytes` to stdout as they are.
pub(crate) fn bytes(bytes: &[u8]) -> Result<(), CliError> {
    let mut stdout = io::stdout();
    stdout.write_all(bytes).and_then(|()| stdout.flush()).map_err(CliError::Stdout)
}

/// Whether `err` is stdout's reader having gone: not a failure of the command.
pub(crate) fn is_closed(err: &CliError) -> bool {
    matches!(err, CliError::Stdout(err) if err.kind() == io::ErrorKind::BrokenPipe)
}
