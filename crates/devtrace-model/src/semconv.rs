//! Attribute names from the OpenTelemetry semantic conventions that devtrace reads.
//!
//! Code refers to these constants, never to inline strings, so a renamed convention changes in
//! one place.

pub const SERVICE_NAME: &str = "service.name";

pub const EXCEPTION_EVENT: &str = "exception";
pub const EXCEPTION_TYPE: &str = "exception.type";
pub const EXCEPTION_MESSAGE: &str = "exception.message";
pub const EXCEPTION_STACKTRACE: &str = "exception.stacktrace";
