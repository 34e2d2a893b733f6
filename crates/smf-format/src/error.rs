use core::fmt;

/// Why bytes are not a valid SMF module.
///
/// Messages name the structure, the field and the offending value, so that a user reading
/// `section 3 (.data): file range 0x2000..0x3010 runs past end of file (0x3000 bytes)` knows
/// what is wrong without a hex editor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The file does not start with `SMF\0`; `found` holds its first bytes.
    NotSmf { found: Vec<u8> },
    /// The file is shorter than a structure it must contain.
    Truncated {
        what: &'static str,
        needed: u64,
        size: u64,
    },
    /// The major version is not one this reader understands.
    UnsupportedVersion { major: u8, minor: u8 },
    /// The module uses a feature this reader does not implement.
    Unsupported(String),
    /// A structure holds an invalid value; `location` says which one and `problem` what is wrong.
    Malformed { location: String, problem: String },
    /// The content does not match the module hash stored in the header.
    HashMismatch {
        stored: [u8; 32],
        computed: [u8; 32],
    },
    /// A table is larger than the configured [`crate::Limits`] allow.
    LimitExceeded {
        what: &'static str,
        value: u64,
        limit: u64,
    },
    /// The writer was given an inconsistent module description.
    Build(String),
}

impl Error {
    pub(crate) fn malformed(location: impl Into<String>, problem: impl Into<String>) -> Error {
        Error::Malformed {
            location: location.into(),
            problem: problem.into(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotSmf { found } if found.starts_with(b"\x7fELF") => f.write_str(
                "not an SMF module: this is an ELF file (pack objects with `smf pack` first)",
            ),
            Error::NotSmf { found } => {
                write!(
                    f,
                    "not an SMF module: expected magic 534d4600 (\"SMF\\0\"), found {}",
                    hex(found)
                )
            }
            Error::Truncated { what, needed, size } => write!(
                f,
                "truncated file: {what} needs {needed:#x} bytes but the file has {size:#x}"
            ),
            Error::UnsupportedVersion { major, minor } => write!(
                f,
                "unsupported SMF version {major}.{minor} (this reader understands {}.x)",
                crate::raw::VERSION_MAJOR
            ),
            Error::Unsupported(what) => write!(f, "unsupported: {what}"),
            Error::Malformed { location, problem } => write!(f, "{location}: {problem}"),
            Error::HashMismatch { stored, computed } => write!(
                f,
                "module hash mismatch: the header says {} but the content hashes to {} (the file is corrupted or was modified)",
                hex(stored),
                hex(computed)
            ),
            Error::LimitExceeded { what, value, limit } => {
                write!(f, "{what} is {value:#x}, above the limit of {limit:#x}")
            }
            Error::Build(problem) => write!(f, "cannot build module: {problem}"),
        }
    }
}

impl std::error::Error for Error {}
