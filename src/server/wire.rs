//! Wire conversion and request validation: between the messages of `log.v1` and the records and
//! logs of storage. A leaf: it calls nothing else of the server but the status constructors.

use bytes::Bytes;
use tonic::Status;

use super::status;
use crate::api::v1::{self, ConsumeResponse, ProduceRequest};
use crate::logs::{LogEntry, LogSettings};
use crate::storage::Record;

/// The value of a produce request, or `INVALID_ARGUMENT` when it has no record or the value is
/// above `max_record_bytes`. The record's offset and timestamp are ignored: the log assigns both.
pub(crate) fn record_value(
    request: ProduceRequest,
    max_record_bytes: usize,
) -> Result<Bytes, Status> {
    let record = request.record.ok_or_else(status::missing_record)?;
    if record.value.len() > max_record_bytes {
        return Err(status::record_too_large(record.value.len(), max_record_bytes));
    }
    Ok(record.value)
}

/// Framing a ConsumeResponse adds around a value, with room to spare.
const RESPONSE_OVERHEAD: usize = 64;

/// The wire form of a stored record, or `RESOURCE_EXHAUSTED` when it cannot be sent under the
/// encoding limit `max_message`.
pub(crate) fn to_response(record: Record, max_message: usize) -> Result<ConsumeResponse, Status> {
    let size = record.value.len();
    if size.saturating_add(RESPONSE_OVERHEAD) > max_message {
        return Err(status::record_too_large_to_send(record.offset, size, max_message));
    }
    Ok(ConsumeResponse { record: Some(record.into()) })
}

/// The settings of an admin request (absent: none given).
pub(crate) fn settings(wire: Option<v1::LogSettings>) -> LogSettings {
    let wire = wire.unwrap_or_default();
    LogSettings {
        retention_bytes: wire.retention_bytes,
        retention_ms: wire.retention_ms,
        segment_bytes: wire.segment_bytes,
    }
}

/// The wire form of a log's description. Reads its offsets (brief locks): call off the workers
/// for many logs.
pub(crate) fn log_info(entry: &LogEntry) -> v1::LogInfo {
    let (log, settings) = (entry.log(), entry.settings());
    v1::LogInfo {
        name: entry.name().to_string(),
        lowest_offset: log.lowest_offset(),
        next_offset: log.next_offset(),
        size_bytes: log.size_bytes(),
        settings: Some(v1::LogSettings {
            retention_bytes: settings.retention_bytes,
            retention_ms: settings.retention_ms,
            segment_bytes: settings.segment_bytes,
        }),
        created_ms: entry.created_ms(),
    }
}
