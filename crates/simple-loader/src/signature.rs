//! The signature policy: which modules a host agrees to map and run.
//!
//! A signed module has a detached signature file beside it, `<module file>.sig`
//! (`smf_sign::signature_path`), holding an ed25519 signature of the module hash (see
//! `docs/FORMAT.md`, *Signature files*). Under [`SignaturePolicy::Require`] the loader checks
//! it right after the module hash, before it opens a needed library, resolves an import,
//! sets up the image or runs any of the module's code.
//!
//! Signature files, and module files read by [`read_module_file`], are opened only if they
//! are regular files: `open` of a FIFO would wait for a writer (`sys::open_regular`).

use std::io::Read;
use std::path::Path;

use smf_format::Module as Parsed;
pub use smf_sign::PublicKey;

use crate::error::LoadError;

/// Whether a load requires a signature, and by whom.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum SignaturePolicy {
    /// Signatures are not looked at (the default).
    #[default]
    Ignore,
    /// Only modules whose signature file verifies with one of these keys are loaded; an
    /// unsigned module, a module loaded from memory (it has no signature file), a signature
    /// by another key, of another module, or a damaged one are refused.
    Require(Vec<PublicKey>),
}

impl SignaturePolicy {
    /// A policy trusting the keys of a public key file (`smf keygen` writes one).
    pub fn require_key_file(path: &Path) -> Result<SignaturePolicy, smf_sign::Error> {
        PublicKey::read_file(path).map(SignaturePolicy::Require)
    }
}

/// Applies `policy` to the module `parsed`, read from `path`. `hash_checked` says whether the
/// header's module hash was already checked against the content; if not, the hash is
/// computed here, so that a signature never vouches for content it does not cover.
pub(crate) fn check(
    policy: &SignaturePolicy,
    parsed: &Parsed<'_>,
    hash_checked: bool,
    path: Option<&Path>,
    name: &str,
) -> Result<(), LoadError> {
    let SignaturePolicy::Require(trusted) = policy else {
        return Ok(());
    };
    let Some(path) = path else {
        return Err(LoadError::Unsigned {
            module: name.to_owned(),
            expected: None,
        });
    };
    let signature_path = smf_sign::signature_path(path);
    let signature = match read_signature_file(&signature_path) {
        Ok(signature) => signature,
        Err(smf_sign::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Err(LoadError::Unsigned {
                module: name.to_owned(),
                expected: Some(signature_path),
            });
        }
        Err(source) => {
            return Err(LoadError::Signature {
                module: name.to_owned(),
                signature: signature_path,
                source,
            });
        }
    };
    let hash = if hash_checked {
        parsed.header().module_hash
    } else {
        smf_format::compute_module_hash(parsed.data()).map_err(|source| LoadError::Format {
            module: name.to_owned(),
            source,
        })?
    };
    smf_sign::verify_hash(&hash, &signature, trusted).map_err(|source| LoadError::Signature {
        module: name.to_owned(),
        signature: signature_path,
        source,
    })?;
    Ok(())
}

/// Reads and parses the signature file at `path` as the loader does: refused without
/// waiting unless it is a regular file (a FIFO, a device or a directory is an
/// [`smf_sign::Error::Io`] naming what it is), and never read past one byte more than a
/// signature file holds.
pub fn read_signature_file(path: &Path) -> Result<smf_sign::ModuleSignature, smf_sign::Error> {
    let file = crate::sys::open_regular(path).map_err(|source| smf_sign::Error::Io {
        path: path.to_owned(),
        source,
    })?;
    smf_sign::read_signature(file, path)
}

/// Reads the whole module file at `path`, refusing without waiting anything but a regular
/// file (`open` of a FIFO would wait for a writer): the error says what it is, as in
/// `not a regular file (a FIFO)`.
pub fn read_module_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut file = crate::sys::open_regular(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}
