//! The errors a proxy can stop with before it serves. Requests never produce these: a bad
//! request is a 4xx and an unavailable cluster a 502/503, answered and logged.

use std::fmt;

/// Why a proxy could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// `--backend` named a cluster the table does not declare.
    UnknownCluster {
        /// The name given.
        name: String,
        /// The clusters the table declares.
        known: Vec<&'static str>,
    },
    /// An address given at run time (`--listen`, `--backend`) is not `IP:PORT`.
    BadAddress {
        /// What was being parsed (`--listen`, `--backend api`).
        what: String,
        /// The text given.
        addr: String,
    },
    /// A command-line argument is malformed.
    BadArgument(String),
    /// A cluster would have no backends.
    EmptyCluster(&'static str),
    /// Setting up a cluster, its TLS or the server failed.
    Startup {
        /// What failed, naming the cluster or file.
        what: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownCluster { name, known } => write!(
                f,
                "unknown cluster `{name}`; the table declares: {}",
                known.join(", ")
            ),
            Error::BadAddress { what, addr } => {
                write!(
                    f,
                    "{what}: `{addr}` is not a socket address like 127.0.0.1:8080 or [::1]:8080"
                )
            }
            Error::BadArgument(msg) => f.write_str(msg),
            Error::EmptyCluster(name) => write!(f, "cluster `{name}` has no backends"),
            Error::Startup { what } => f.write_str(what),
        }
    }
}

impl std::error::Error for Error {}
