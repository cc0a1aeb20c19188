//! `google.rpc.Status` and `google.rpc.RetryInfo`, the error details OTLP uses.

/// `google.rpc.Status`: the body of an OTLP/HTTP error reply and the gRPC status details.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`: how long a throttled client should wait.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

pub const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// gRPC status codes used here.
pub const INVALID_ARGUMENT: i32 = 3;
pub const PERMISSION_DENIED: i32 = 7;
pub const UNAVAILABLE: i32 = 14;

/// A status carrying a retry delay, encoded for `grpc-status-details-bin`.
pub fn with_retry_delay(code: i32, message: &str, delay: std::time::Duration) -> RpcStatus {
    let retry = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: delay.as_secs() as i64,
            nanos: delay.subsec_nanos() as i32,
        }),
    };
    RpcStatus {
        code,
        message: message.to_owned(),
        details: vec![ProtoAny {
            type_url: RETRY_INFO_TYPE.into(),
            value: prost::Message::encode_to_vec(&retry),
        }],
    }
}
