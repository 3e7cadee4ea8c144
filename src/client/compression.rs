//! [`Compression`]: the wire compression a [`Client`](super::Client) may ask for. Off unless
//! asked: with it, the client compresses what it sends and tells the server it accepts the same
//! encoding back, so the server compresses its answers too.

use std::fmt;
use std::str::FromStr;

use tonic::codec::CompressionEncoding;

/// A message encoding both ends of a call may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// gzip (`grpc-encoding: gzip`): understood by every gRPC implementation.
    Gzip,
    /// zstd (`grpc-encoding: zstd`): faster and smaller, understood by fewer peers.
    Zstd,
}

impl Compression {
    /// Every encoding, in the order the CLI lists them.
    pub const ALL: [Compression; 2] = [Compression::Gzip, Compression::Zstd];

    /// The name on the wire and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    pub(super) fn encoding(self) -> CompressionEncoding {
        match self {
            Compression::Gzip => CompressionEncoding::Gzip,
            Compression::Zstd => CompressionEncoding::Zstd,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name() == text)
            .ok_or_else(|| format!("{text:?} is not a compression: use gzip or zstd"))
    }
}
