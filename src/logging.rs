//! Log set-up: human-readable lines by default, JSON lines with `IMS_LOG_FORMAT=json`, filtered by
//! `RUST_LOG` (default `info`). The server logs to stdout; one-shot commands log to stderr so their
//! stdout stays machine-readable. Each request's lines carry its `request_id` span field.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    Stderr,
}

pub fn init(format: LogFormat, sink: Sink) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match (format, sink) {
        (LogFormat::Json, Sink::Stdout) => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stdout)
            .try_init(),
        (LogFormat::Json, Sink::Stderr) => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .try_init(),
        (LogFormat::Text, Sink::Stdout) => builder.with_writer(std::io::stdout).try_init(),
        (LogFormat::Text, Sink::Stderr) => builder.with_writer(std::io::stderr).try_init(),
    };
    // A second initialisation (tests) keeps the first subscriber.
    drop(result);
}
