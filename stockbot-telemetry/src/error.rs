//! The crate's one error type.

use std::fmt;
use std::path::PathBuf;

/// An error from setting up or steering the SDK.
///
/// The telemetry path itself (emitting logs, spans, metrics) never returns errors and never
/// panics: problems there are counted and reported through [`PipelineStats`](crate::PipelineStats).
/// Errors come only from [`init`](crate::init), configuration loading and control calls
/// such as [`TelemetryGuard::set_filter`](crate::TelemetryGuard::set_filter).
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
}

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A configuration value is invalid. `field` is the dotted path of the setting
    /// (for example `log.file.max_file_bytes`) or the environment variable that carried it.
    InvalidConfig {
        /// The setting, e.g. `pipeline.queue_capacity` or `STOCKBOT_LOG_DIR`.
        field: String,
        /// The offending value as given (secrets are never echoed).
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// A configuration file could not be read.
    ConfigFileRead {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A configuration file is not valid TOML for [`Config`](crate::Config).
    ///
    /// Only the parser's message and position are kept: `toml`'s error type carries the whole
    /// file text, secrets included, in its `Debug` output.
    ConfigFileParse {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
        /// 1-based line and column, when known.
        position: Option<(usize, usize)>,
    },
    /// A sink could not be opened (for example a log directory that is not writable).
    SinkOpen {
        /// The setting that named the resource, e.g. `log.file.directory`.
        field: String,
        /// The path or address.
        target: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A background thread could not be started.
    SpawnWorker {
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// [`init`](crate::init) was already called in this process, or another global
    /// `tracing` subscriber or `log` logger is installed.
    AlreadyInitialized {
        /// Which global was taken.
        what: &'static str,
    },
    /// A filter directive (RUST_LOG style) could not be parsed.
    InvalidFilter {
        /// The directive string.
        directives: String,
        /// The parser's message.
        reason: String,
    },
    /// A function is tied to an SLO (`#[instrument_trade(slo = "…")]`) that the configuration
    /// does not declare (`Config::slos`).
    UnknownSlo {
        /// The SLO name the function gives.
        slo: String,
        /// `module::function`.
        function: String,
        /// `file:line` of the attribute.
        location: String,
        /// The SLOs the configuration declares.
        declared: Vec<String>,
    },
    /// The telemetry pipeline was already shut down.
    ShutDown,
    /// A backend (Elasticsearch) or a local log file could not be used for an administrative
    /// call (installing templates, searching).
    Backend {
        /// The URL or path.
        target: String,
        /// The HTTP status, when the backend answered.
        status: Option<u16>,
        /// What went wrong (the backend's own error, shortened).
        message: String,
    },
}

impl Error {
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        ErrorKind::InvalidConfig {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
        .into()
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error { kind }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::InvalidConfig {
                field,
                value,
                reason,
            } => write!(f, "invalid configuration: {field} = {value:?}: {reason}"),
            ErrorKind::ConfigFileRead { path, .. } => {
                write!(f, "cannot read configuration file {}", path.display())
            }
            ErrorKind::ConfigFileParse {
                path,
                message,
                position,
            } => {
                write!(f, "invalid configuration file {}", path.display())?;
                if let Some((line, col)) = position {
                    write!(f, " (line {line}, column {col})")?;
                }
                write!(f, ": {message}")
            }
            ErrorKind::SinkOpen { field, target, .. } => {
                write!(f, "cannot open log sink {field} = {target:?}")
            }
            ErrorKind::SpawnWorker { .. } => write!(f, "cannot start the telemetry worker thread"),
            ErrorKind::AlreadyInitialized { what } => {
                write!(
                    f,
                    "telemetry already initialized: {what} is already installed"
                )
            }
            ErrorKind::InvalidFilter { directives, reason } => {
                write!(f, "invalid log filter {directives:?}: {reason}")
            }
            ErrorKind::UnknownSlo {
                slo,
                function,
                location,
                declared,
            } => {
                write!(
                    f,
                    "{function} ({location}) is tied to SLO {slo:?}, which is not declared"
                )?;
                if declared.is_empty() {
                    write!(f, " (the configuration declares no SLO)")?;
                } else {
                    write!(f, " (declared: {})", declared.join(", "))?;
                }
                write!(
                    f,
                    "; declare it with [[slo]] in the configuration or AlertSpec::apply_to"
                )
            }
            ErrorKind::ShutDown => write!(f, "the telemetry pipeline is shut down"),
            ErrorKind::Backend {
                target,
                status: Some(status),
                message,
            } => write!(f, "{target} answered {status}: {message}"),
            ErrorKind::Backend {
                target, message, ..
            } => write!(f, "{target}: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::ConfigFileRead { source, .. } => Some(source),
            ErrorKind::SinkOpen { source, .. } => Some(source),
            ErrorKind::SpawnWorker { source } => Some(source),
            _ => None,
        }
    }
}
