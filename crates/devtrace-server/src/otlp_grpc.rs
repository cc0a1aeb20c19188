//! OTLP over gRPC: `TraceService/Export`, `LogsService/Export` and `MetricsService/Export`.
//!
//! The request message is taken as raw bytes (a pass-through codec) and decoded by
//! `devtrace-ingest`, so an undecodable message is answered `INVALID_ARGUMENT` with the reason,
//! and an overloaded server refuses before spending CPU on decoding. Throttling answers
//! `UNAVAILABLE` with a `RetryInfo` detail, which OTLP exporters honour.

use crate::auth::{Auth, Credentials, Scope};
use crate::guard::AllowedHosts;
use crate::rpc_status;
use bytes::{Buf, BufMut, Bytes};
use devtrace_intake::otlp::{Encoding, IngestError, Ingestor, RETRY_AFTER, Signal};
use devtrace_store::ProjectId;
use prost::Message;
use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::codec::{
    Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder,
};
use tonic::codegen::{Service, http};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Request, Response, Status};

pub async fn serve(
    listener: tokio::net::TcpListener,
    ingestor: Arc<Ingestor>,
    auth: Auth,
    tls: Option<tonic::transport::ServerTlsConfig>,
    max_message_bytes: usize,
    hosts: AllowedHosts,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    builder
        .add_service(OtlpGrpc::<TraceService>::new(
            Arc::clone(&ingestor),
            auth.clone(),
            max_message_bytes,
            hosts.clone(),
        ))
        .add_service(OtlpGrpc::<LogsService>::new(
            Arc::clone(&ingestor),
            auth.clone(),
            max_message_bytes,
            hosts.clone(),
        ))
        .add_service(OtlpGrpc::<MetricsService>::new(
            ingestor,
            auth,
            max_message_bytes,
            hosts,
        ))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown,
        )
        .await
}

/// Names one OTLP gRPC service and the signal its `Export` method carries.
pub trait OtlpService: Send + Sync + 'static {
    const NAME: &'static str;
    const SIGNAL: Signal;
}

pub struct TraceService;
impl OtlpService for TraceService {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const SIGNAL: Signal = Signal::Traces;
}

pub struct LogsService;
impl OtlpService for LogsService {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const SIGNAL: Signal = Signal::Logs;
}

pub struct MetricsService;
impl OtlpService for MetricsService {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const SIGNAL: Signal = Signal::Metrics;
}

pub struct OtlpGrpc<S> {
    ingestor: Arc<Ingestor>,
    auth: Auth,
    max_message_bytes: usize,
    hosts: AllowedHosts,
    service: PhantomData<fn() -> S>,
}

impl<S> OtlpGrpc<S> {
    /// `hosts` is the listener's DNS-rebinding guard, checked against `:authority`.
    pub fn new(
        ingestor: Arc<Ingestor>,
        auth: Auth,
        max_message_bytes: usize,
        hosts: AllowedHosts,
    ) -> Self {
        Self {
            ingestor,
            auth,
            max_message_bytes,
            hosts,
            service: PhantomData,
        }
    }
}

impl<S> Clone for OtlpGrpc<S> {
    fn clone(&self) -> Self {
        Self::new(
            Arc::clone(&self.ingestor),
            self.auth.clone(),
            self.max_message_bytes,
            self.hosts.clone(),
        )
    }
}

impl<S: OtlpService> NamedService for OtlpGrpc<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

impl<S, B> Service<http::Request<B>> for OtlpGrpc<S>
where
    S: OtlpService,
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != format!("/{}/Export", S::NAME) {
            return Box::pin(async {
                Ok(Status::unimplemented("only Export is implemented").into_http())
            });
        }
        // `:authority` (and `Origin`, should a browser get here) name this server.
        if let Some(message) = crate::guard::check(&self.hosts, request.headers(), request.uri()) {
            return Box::pin(async move { Ok(Status::permission_denied(message).into_http()) });
        }
        let mut accept = EnabledCompressionEncodings::default();
        accept.enable(CompressionEncoding::Gzip);
        let mut grpc = Grpc::new(PassThrough)
            .apply_compression_config(accept, EnabledCompressionEncodings::default())
            .apply_max_message_size_config(Some(self.max_message_bytes), None);
        // Admission before tonic reads the message: a refused request costs no memory.
        let admission = match self.ingestor.admit() {
            Ok(admission) => admission,
            Err(error) => return Box::pin(async move { Ok(status_for(&error).into_http()) }),
        };
        // The token travels as metadata (`authorization: Bearer …`), an HTTP/2 header.
        let extensions = request.extensions();
        let client = extensions
            .get::<tonic::transport::server::TcpConnectInfo>()
            .and_then(|info| info.remote_addr())
            .or_else(|| {
                extensions
                    .get::<tonic::transport::server::TlsConnectInfo<
                        tonic::transport::server::TcpConnectInfo,
                    >>()
                    .and_then(|info| info.get_ref().remote_addr())
            })
            .map(|addr| addr.ip())
            .or_else(|| crate::client_ip(extensions));
        let credentials = Credentials::from_headers(request.headers(), false, client);
        let auth = self.auth.clone();
        let ingestor = Arc::clone(&self.ingestor);
        Box::pin(async move {
            // Checked before the message is read: a refused request stores nothing.
            let project = match auth.check_async(credentials, Scope::Ingest).await {
                Ok(principal) => principal.project,
                Err(denied) => return Ok(denied.grpc_status().into_http()),
            };
            let method = Export::<S> {
                ingestor,
                project,
                service: PhantomData,
            };
            let response = grpc.unary(method, request).await;
            drop(admission);
            Ok(response)
        })
    }
}

struct Export<S> {
    ingestor: Arc<Ingestor>,
    project: ProjectId,
    service: PhantomData<fn() -> S>,
}

impl<S: OtlpService> UnaryService<Bytes> for Export<S> {
    type Response = Vec<u8>;
    type Future = BoxFuture<Response<Vec<u8>>, Status>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let ingestor = Arc::clone(&self.ingestor);
        let project = self.project;
        Box::pin(async move {
            let body = request.into_inner();
            // The message is read (tonic bounds it by the message size limit); what it costs
            // from here until its commit counts against the in-flight byte budget.
            let _charge = ingestor.charge(body.len()).map_err(|e| status_for(&e))?;
            match ingestor
                .ingest(S::SIGNAL, Encoding::Protobuf, &body, project)
                .await
            {
                Ok(receipt) => Ok(Response::new(match S::SIGNAL {
                    Signal::Traces => receipt.trace_response().encode_to_vec(),
                    Signal::Logs => receipt.logs_response().encode_to_vec(),
                    Signal::Metrics => receipt.metrics_response().encode_to_vec(),
                })),
                Err(error) => Err(status_for(&error)),
            }
        })
    }
}

/// Maps an ingest failure to the status OTLP exporters expect: `INVALID_ARGUMENT` is final,
/// `UNAVAILABLE` with `RetryInfo` means "retry later".
pub fn status_for(error: &IngestError) -> Status {
    match error {
        IngestError::Malformed(e) => Status::invalid_argument(e.to_string()),
        IngestError::Overloaded | IngestError::Unavailable(_) => {
            let message = error.to_string();
            let details =
                rpc_status::with_retry_delay(rpc_status::UNAVAILABLE, &message, RETRY_AFTER);
            Status::with_details(Code::Unavailable, message, details.encode_to_vec().into())
        }
    }
}

/// A codec that hands the request message over undecoded and sends pre-encoded replies.
#[derive(Clone, Copy, Default)]
struct PassThrough;

impl Codec for PassThrough {
    type Encode = Vec<u8>;
    type Decode = Bytes;
    type Encoder = PassThrough;
    type Decoder = PassThrough;

    fn encoder(&mut self) -> Self::Encoder {
        *self
    }

    fn decoder(&mut self) -> Self::Decoder {
        *self
    }
}

impl Encoder for PassThrough {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for PassThrough {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
