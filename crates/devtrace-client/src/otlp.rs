//! OTLP/HTTP export to a receiver (`devtrace serve`'s port 4318, or the receiver `devtrace
//! run` starts): protobuf POSTs to `/v1/traces` and `/v1/logs`, retried as the OTLP
//! specification allows (429, 502, 503, 504, after `Retry-After` when given): the server
//! stores a span once however often it arrives, so sending it again is safe.

use crate::error::ClientError;
use crate::http::Client;
use crate::retry::RetryPolicy;

const PROTOBUF: &str = "application/x-protobuf";

impl Client {
    /// POSTs an encoded `ExportTraceServiceRequest` to `/v1/traces`.
    pub fn export_traces(&self, request: &[u8]) -> Result<(), ClientError> {
        self.export("/v1/traces", request)
    }

    /// POSTs an encoded `ExportLogsServiceRequest` to `/v1/logs`.
    pub fn export_logs(&self, request: &[u8]) -> Result<(), ClientError> {
        self.export("/v1/logs", request)
    }

    fn export(&self, path: &str, request: &[u8]) -> Result<(), ClientError> {
        let reply = self.post(path, PROTOBUF, PROTOBUF, request, RetryPolicy::OTLP_EXPORT)?;
        if reply.is_success() {
            Ok(())
        } else {
            Err(self.status_error(path, &reply))
        }
    }
}
