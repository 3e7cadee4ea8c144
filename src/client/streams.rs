//! The two streams a call can answer with: [`Acks`] of a ProduceStream and [`Records`] of a
//! ConsumeStream. Each yields one item per server message and turns the status that ends the
//! stream into a [`ClientError`](super::ClientError).

use tonic::Streaming;

use super::Result;
use crate::api::v1::{ConsumeResponse, ProduceResponse};
use crate::storage::Record;

/// The acks of a ProduceStream.
#[derive(Debug)]
pub struct Acks(pub(super) Streaming<ProduceResponse>);

impl Acks {
    /// The next record's offset; `None` once the server has acked everything and ended with OK.
    pub async fn next(&mut self) -> Result<Option<u64>> {
        Ok(self.0.message().await?.map(|ack| ack.offset))
    }
}

/// The records of a ConsumeStream.
#[derive(Debug)]
pub struct Records(pub(super) Streaming<ConsumeResponse>);

impl Records {
    /// The next record; `None` if the server ended the stream with OK.
    pub async fn next(&mut self) -> Result<Option<Record>> {
        loop {
            match self.0.message().await? {
                Some(response) => {
                    if let Some(record) = response.record {
                        return Ok(Some(record.into()));
                    }
                }
                None => return Ok(None),
            }
        }
    }
}
