use std::fmt;
use std::io;
use std::path::PathBuf;

use smf_format::{Arch, Platform, SymbolKind};

/// Why a module could not be loaded, or a symbol not handed out.
///
/// Every message names the module (its path, or `<memory>`) and the symbol where one is
/// involved, so that the one line a command-line tool prints says what is wrong and where.
/// A variant caused by another error (I/O, the format reader, the dynamic linker, a
/// signature) returns it from [`source`](std::error::Error::source) and does not repeat it
/// in its own message. The alternate form, `{:#}`, prints the whole chain on one line, as
/// `anyhow` does: `lib.smf: not a valid module: module hash mismatch: …`.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    Io { path: PathBuf, source: io::Error },
    /// The file is not a valid SMF module.
    Format {
        module: String,
        source: smf_format::Error,
    },
    /// The module was built for another instruction set.
    WrongArch { module: String, found: Arch },
    /// The module was built for another operating system.
    WrongPlatform { module: String, found: Platform },
    /// The module was laid out for pages smaller than the kernel's.
    PageSize {
        module: String,
        module_page_size: u64,
        host_page_size: u64,
    },
    /// A native library listed as needed could not be opened.
    NativeLibrary {
        module: String,
        library: String,
        source: libloading::Error,
    },
    /// A strong import is defined nowhere.
    UnresolvedImport { module: String, name: String },
    /// An import resolved to a module symbol of another kind or type.
    ImportMismatch {
        module: String,
        name: String,
        problem: String,
    },
    /// The module needs a static thread-local block (initial-exec accesses or TLS
    /// descriptors) and none could be had.
    StaticTls { module: String, reason: String },
    /// The operating system refused a memory operation.
    Memory {
        module: String,
        operation: &'static str,
        source: io::Error,
    },
    /// The module exports no symbol of that name.
    SymbolNotFound { module: String, name: String },
    /// The symbol exists but is of another kind than the accessor asked for.
    WrongSymbolKind {
        module: String,
        name: String,
        expected: &'static str,
        found: SymbolKind,
    },
    /// The symbol's type recorded in the module (its `typeinfo`) is not the type the caller
    /// expects.
    TypeMismatch {
        module: String,
        name: String,
        /// The caller's type, the module's, and where they differ.
        problem: String,
    },
    /// The handle type asked for cannot hold a code address.
    NotPointerSized { name: String, size: usize },
    /// The module has no entry point.
    NotExecutable { module: String },
    /// The module was not packed as reloadable (`smf pack --reloadable`).
    NotReloadable { module: String },
    /// A new version lacks or changed a function that other modules or handles are linked to.
    DependentBroken {
        module: String,
        name: String,
        problem: String,
    },
    /// A module's version table names a module dependency that no loaded module meets:
    /// `required` is the range, `found` the versions of the loaded modules of that name
    /// (empty if none is loaded).
    DependencyVersion {
        module: String,
        dependency: String,
        required: String,
        found: Vec<String>,
    },
    /// A reload would bring a version that modules relying on the old one cannot accept (a
    /// new major version, or one outside a dependent's range); `ReloadOptions` can allow a
    /// major change.
    VersionChange { module: String, problem: String },
    /// The registry holds no module loaded from that path.
    NotLoaded { path: PathBuf },
    /// The registry holds no module loaded from memory under that name.
    NameNotLoaded { name: String },
    /// A different module is already loaded from memory under that name
    /// (`Registry::reload_bytes` replaces it).
    NameTaken { name: String },
    /// The signature policy requires a signature and the module has none: no signature file
    /// at `expected`, or (`None`) the module was loaded from memory.
    Unsigned {
        module: String,
        expected: Option<PathBuf>,
    },
    /// The module's signature file does not vouch for it: damaged, made by an untrusted key,
    /// made for another module, or forged.
    Signature {
        module: String,
        signature: PathBuf,
        source: smf_sign::Error,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.message(f)?;
        if f.alternate() {
            let mut cause = std::error::Error::source(self);
            while let Some(error) = cause {
                write!(f, ": {error}")?;
                cause = error.source();
            }
        }
        Ok(())
    }
}

impl LoadError {
    /// This error's own message, without its causes.
    fn message(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, .. } => write!(f, "{}: cannot read", path.display()),
            LoadError::Format { module, .. } => write!(f, "{module}: cannot load"),
            LoadError::WrongArch { module, found } => write!(
                f,
                "{module}: built for {found}, but this loader runs on {}",
                crate::HOST_ARCH.map_or("an unsupported architecture", |a| a.name())
            ),
            LoadError::WrongPlatform { module, found } => {
                write!(
                    f,
                    "{module}: built for {found}, but this loader runs on {}",
                    std::env::consts::OS
                )
            }
            LoadError::PageSize {
                module,
                module_page_size,
                host_page_size,
            } => write!(
                f,
                "{module}: laid out for {} KiB pages, smaller than this kernel's {} KiB pages",
                module_page_size / 1024,
                host_page_size / 1024
            ),
            LoadError::NativeLibrary {
                module, library, ..
            } => {
                write!(f, "{module}: cannot open needed library {library}")
            }
            LoadError::UnresolvedImport { module, name } => write!(
                f,
                "{module}: unresolved import `{name}`: no host definition, loaded module, needed library or process symbol defines it"
            ),
            LoadError::ImportMismatch {
                module,
                name,
                problem,
            } => write!(f, "{module}: import `{name}`: {problem}"),
            LoadError::StaticTls { module, reason } => write!(
                f,
                "{module}: its initial-exec or TLS-descriptor thread-locals need a static \
                 thread-local block, which could not be allocated: {reason}"
            ),
            LoadError::Memory {
                module, operation, ..
            } => write!(f, "{module}: {operation} failed"),
            LoadError::SymbolNotFound { module, name } => {
                write!(f, "{module}: no exported symbol `{name}`")
            }
            LoadError::WrongSymbolKind {
                module,
                name,
                expected,
                found,
            } => {
                write!(
                    f,
                    "{module}: `{name}` is a {found} symbol, not a {expected}"
                )
            }
            LoadError::NotPointerSized { name, size } => write!(
                f,
                "cannot hand out `{name}` as a {size}-byte type: a function handle must be pointer-sized (an `extern \"C\" fn` type)"
            ),
            LoadError::NotExecutable { module } => write!(
                f,
                "{module}: not an executable module (packed without --entry)"
            ),
            LoadError::NotReloadable { module } => {
                write!(f, "{module}: not reloadable (pack it with --reloadable)")
            }
            LoadError::TypeMismatch {
                module,
                name,
                problem,
            } => write!(
                f,
                "{module}: `{name}` is not of the type expected: {problem}"
            ),
            LoadError::DependentBroken {
                module,
                name,
                problem,
            } => {
                write!(
                    f,
                    "{module}: cannot replace `{name}`, which other code is linked to: {problem}"
                )
            }
            LoadError::DependencyVersion {
                module,
                dependency,
                required,
                found,
            } if found.is_empty() => write!(
                f,
                "{module}: requires module {dependency} {required}, and no module of that name is loaded"
            ),
            LoadError::DependencyVersion {
                module,
                dependency,
                required,
                found,
            } => write!(
                f,
                "{module}: requires module {dependency} {required}, but the loaded versions are {}",
                found.join(", ")
            ),
            LoadError::VersionChange { module, problem } => {
                write!(f, "{module}: reload refused: {problem}")
            }
            LoadError::NotLoaded { path } => {
                write!(f, "{}: no module loaded from this path", path.display())
            }
            LoadError::NameNotLoaded { name } => {
                write!(f, "{name}: no module loaded from memory under this name")
            }
            LoadError::NameTaken { name } => write!(
                f,
                "{name}: another module is loaded under this name (reload_bytes replaces it)"
            ),
            LoadError::Unsigned {
                module,
                expected: Some(expected),
            } => write!(
                f,
                "{module}: refused: unsigned module (no signature file {}), and a signature by a trusted key is required",
                expected.display()
            ),
            LoadError::Unsigned {
                module,
                expected: None,
            } => write!(
                f,
                "{module}: refused: a signature by a trusted key is required, and a module loaded from memory has no signature file"
            ),
            LoadError::Signature {
                module, signature, ..
            } => write!(f, "{module}: refused: signature {}", signature.display()),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io { source, .. } | LoadError::Memory { source, .. } => Some(source),
            LoadError::Format { source, .. } => Some(source),
            LoadError::Signature { source, .. } => Some(source),
            LoadError::NativeLibrary { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_printed_once_and_the_chain_on_request() {
        let error = LoadError::Io {
            path: PathBuf::from("lib.smf"),
            source: io::Error::other("not a regular file (a FIFO)"),
        };
        assert_eq!(error.to_string(), "lib.smf: cannot read");
        assert_eq!(
            format!("{error:#}"),
            "lib.smf: cannot read: not a regular file (a FIFO)"
        );
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("not a regular file (a FIFO)"));
    }
}
