//! The diffcopy packets (`fsutil.types.Packet`) as the sender sees them, and
//! the sink and source traits that carry them over any transport.

use std::future::Future;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::fsutil::walk::ContextEntry;

/// Wire values of `fsutil.types.Packet.PacketType`.
pub mod packet_type {
    /// A file's metadata; an empty one ends the listing.
    pub const STAT: i32 = 0;
    /// The receiver asks for a file's content.
    pub const REQ: i32 = 1;
    /// A chunk of content; an empty one ends the file.
    pub const DATA: i32 = 2;
    /// End of the exchange.
    pub const FIN: i32 = 3;
    /// An error, with its message in `data`.
    pub const ERR: i32 = 4;
    /// Content-hash request (unused by the diffcopy sender).
    pub const HASH_REQ: i32 = 5;
    /// Content hash (unused by the diffcopy sender).
    pub const HASH: i32 = 6;
}

/// One diffcopy packet (`fsutil.types.Packet`), in either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// STAT with the entry; `None` is the empty STAT ending the listing.
    Stat(Option<ContextEntry>),
    /// REQ: send the content of entry `id`.
    Req(u32),
    /// DATA: a chunk of entry `id`; empty `data` marks the end of the file.
    Data {
        /// Stream ID of the entry.
        id: u32,
        /// The bytes; empty for end of file.
        data: Bytes,
    },
    /// FIN.
    Fin,
    /// ERR with a message.
    Err(String),
    /// Any other packet type (ignored by the sender, like fsutil does).
    Other(i32),
}

impl Packet {
    /// The `PacketType` wire value.
    pub fn type_code(&self) -> i32 {
        match self {
            Packet::Stat(_) => packet_type::STAT,
            Packet::Req(_) => packet_type::REQ,
            Packet::Data { .. } => packet_type::DATA,
            Packet::Fin => packet_type::FIN,
            Packet::Err(_) => packet_type::ERR,
            Packet::Other(code) => *code,
        }
    }
}

/// A failure of the underlying stream.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(Box<dyn std::error::Error + Send + Sync>);

impl TransportError {
    /// Wraps any error (or message).
    pub fn new(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        TransportError(err.into())
    }
}

/// Where packets to the receiver go.
pub trait PacketSink: Send {
    /// Sends one packet, waiting for room if the stream is congested.
    fn send(&mut self, packet: Packet) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Sends `packets` in order. A transport that can pass several packets
    /// in one hand-off (the gRPC sink: one channel message, encoded in one
    /// go) overrides this; the default sends them one by one.
    fn send_all(
        &mut self,
        packets: Vec<Packet>,
    ) -> impl Future<Output = Result<(), TransportError>> + Send {
        async move {
            for packet in packets {
                self.send(packet).await?;
            }
            Ok(())
        }
    }
}

/// Where packets from the receiver come from.
pub trait PacketSource: Send {
    /// The next packet; `Ok(None)` once the receiver closed its side.
    fn recv(&mut self) -> impl Future<Output = Result<Option<Packet>, TransportError>> + Send;
}

impl PacketSink for mpsc::Sender<Packet> {
    async fn send(&mut self, packet: Packet) -> Result<(), TransportError> {
        mpsc::Sender::send(self, packet)
            .await
            .map_err(|_| TransportError::new("the receiving side is gone"))
    }
}

impl PacketSource for mpsc::Receiver<Packet> {
    async fn recv(&mut self) -> Result<Option<Packet>, TransportError> {
        Ok(mpsc::Receiver::recv(self).await)
    }
}
