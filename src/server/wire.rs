//! Wire conversion and request validation: between the messages of `log.v1` and the records of
//! storage. A leaf: it calls nothing else of the server but the status constructors.

use bytes::Bytes;
use tonic::Status;

use super::status;
use crate::api::v1::{ConsumeResponse, ProduceRequest};
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
