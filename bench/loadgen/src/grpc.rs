//! OTLP/gRPC sender: `TraceService/Export` with pre-encoded request bytes.
//!
//! The generated `TraceServiceClient` takes an `ExportTraceServiceRequest`
//! and encodes it on every call, which would put the encoding on the clock.
//! This sender drives the same method through `tonic::client::Grpc` with a
//! codec that writes the already encoded bytes as they are and decodes the
//! reply with prost, so on the wire it is identical to `TraceServiceClient`.

use std::time::Duration;

use anyhow::{Context, Result};
use bytes::{BufMut, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::send::Outcome;

/// The full method path of OTLP trace export.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Sends pre-encoded export requests over one HTTP/2 connection.
#[derive(Debug, Clone)]
pub struct GrpcSender {
    grpc: tonic::client::Grpc<Channel>,
}

impl GrpcSender {
    /// Opens a connection to `addr` (`host:port`, or a full `http://` URI).
    pub async fn connect(addr: &str) -> Result<Self> {
        let uri = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        let channel = Endpoint::from_shared(uri.clone())
            .with_context(|| format!("invalid gRPC address {addr:?}"))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("connecting to the OTLP/gRPC receiver at {uri}"))?;
        let grpc = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(16 << 20)
            .max_encoding_message_size(usize::MAX);
        Ok(Self { grpc })
    }

    /// Sends one encoded `ExportTraceServiceRequest`.
    pub async fn send(&mut self, body: Bytes) -> Outcome {
        if let Err(e) = self.grpc.ready().await {
            return Outcome::Transport(format!("gRPC channel not ready: {e}"));
        }
        let path = http_path();
        match self
            .grpc
            .unary(tonic::Request::new(body), path, RawCodec)
            .await
        {
            Ok(reply) => {
                let reply = reply.into_inner();
                let (rejected, message) = reply
                    .partial_success
                    .map(|p| (p.rejected_spans.max(0) as u64, p.error_message))
                    .unwrap_or_default();
                Outcome::Accepted { rejected, message }
            }
            Err(status) => classify(&status),
        }
    }
}

fn http_path() -> tonic::codegen::http::uri::PathAndQuery {
    tonic::codegen::http::uri::PathAndQuery::from_static(EXPORT_PATH)
}

/// Maps a failed call to what an OTLP exporter does next.
fn classify(status: &Status) -> Outcome {
    // Errors raised by the client's own transport carry their cause; replies
    // from the server do not.
    if std::error::Error::source(status).is_some() {
        return Outcome::Transport(status.to_string());
    }
    match status.code() {
        Code::Unavailable | Code::ResourceExhausted => Outcome::Throttled {
            retry_after: retry_info(status),
        },
        // Retryable per the OTLP specification.
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::DataLoss => Outcome::Retryable(status.to_string()),
        _ => Outcome::Failed(format!("gRPC {:?}: {}", status.code(), status.message())),
    }
}

/// `google.rpc.Status`, as carried in `grpc-status-details-bin`.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
struct ProtoAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// The server's requested back-off, from a `google.rpc.RetryInfo` detail.
fn retry_info(status: &Status) -> Option<Duration> {
    let details = status.details();
    if details.is_empty() {
        return None;
    }
    let rpc = RpcStatus::decode(details).ok()?;
    rpc.details
        .iter()
        .filter(|d| {
            d.type_url.ends_with("/google.rpc.RetryInfo") || d.type_url == "google.rpc.RetryInfo"
        })
        .find_map(|d| RetryInfo::decode(d.value.as_slice()).ok()?.retry_delay)
        .map(|d| {
            Duration::new(
                d.seconds.max(0) as u64,
                d.nanos.clamp(0, 999_999_999) as u32,
            )
        })
}

/// Encodes `Bytes` as they are; decodes replies as `ExportTraceServiceResponse`.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ResponseDecoder
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.len());
        dst.put_slice(&item);
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct ResponseDecoder;

impl Decoder for ResponseDecoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("bad ExportTraceServiceResponse: {e}")))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds the `grpc-status-details-bin` payload carrying a RetryInfo.
    pub(crate) fn retry_details(delay: Duration) -> Bytes {
        let info = RetryInfo {
            retry_delay: Some(ProtoDuration {
                seconds: delay.as_secs() as i64,
                nanos: delay.subsec_nanos() as i32,
            }),
        };
        let status = RpcStatus {
            code: Code::ResourceExhausted as i32,
            message: "queue full".into(),
            details: vec![ProtoAny {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                value: info.encode_to_vec(),
            }],
        };
        Bytes::from(status.encode_to_vec())
    }

    #[test]
    fn retry_info_is_parsed() {
        let status = Status::with_details(
            Code::ResourceExhausted,
            "busy",
            retry_details(Duration::from_millis(1_250)),
        );
        match classify(&status) {
            Outcome::Throttled { retry_after } => {
                assert_eq!(retry_after, Some(Duration::from_millis(1_250)))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(
            classify(&Status::unavailable("x")),
            Outcome::Throttled { retry_after: None }
        ));
        assert!(matches!(
            classify(&Status::deadline_exceeded("x")),
            Outcome::Retryable(_)
        ));
        assert!(matches!(
            classify(&Status::invalid_argument("x")),
            Outcome::Failed(_)
        ));
        // Garbage details are ignored, not fatal.
        let garbage = Status::with_details(Code::Unavailable, "x", Bytes::from_static(b"\xff\xff"));
        assert!(matches!(
            classify(&garbage),
            Outcome::Throttled { retry_after: None }
        ));
    }
}
