//! Detached ed25519 signatures for SMF modules.
//!
//! A signature never changes the module file: it lives beside it, in `<module>.sig`
//! ([`signature_path`]), and signs the module's 32-byte BLAKE3 module hash (which covers every
//! byte of the file) under a domain-separation prefix, so a signature made for a module can
//! never be mistaken for a signature of anything else. `docs/FORMAT.md`, section *Signature
//! files*, is the byte-exact specification of the signature file and of the key files.
//!
//! ```
//! use smf_sign::*;
//!
//! let secret = SecretKey::from_seed([7; 32]);
//! let trusted = [secret.public_key()];
//! let hash = [0xab; 32]; // smf_format::compute_module_hash(&module_bytes)?
//! let signature = secret.sign_hash(&hash);
//! let bytes = signature.to_bytes();
//!
//! let parsed = ModuleSignature::parse(&bytes).unwrap();
//! assert_eq!(verify_hash(&hash, &parsed, &trusted).unwrap(), &trusted[0]);
//! assert!(verify_hash(&[0xac; 32], &parsed, &trusted).is_err());
//! ```
//!
//! Keys are ed25519 key pairs (`ed25519-dalek`); verification is strict
//! (`verify_strict`: no small-order keys, no malleable signatures).

use std::fmt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

/// The eight bytes a signature file starts with.
pub const MAGIC: [u8; 8] = *b"SMFSIG\0\0";
/// The signature file version this crate reads and writes.
pub const VERSION: u8 = 1;
/// Algorithm 1: ed25519 (RFC 8032, pure, no pre-hash).
pub const ALGORITHM_ED25519: u8 = 1;
/// Size of a version 1 signature file.
pub const SIGNATURE_FILE_LEN: usize = 144;
/// What the signed message starts with; the module hash follows.
pub const DOMAIN: &[u8; 24] = b"SMF module signature v1\0";

const PUBLIC_KEY_TAG: &str = "smf-ed25519-public";
const SECRET_KEY_TAG: &str = "smf-ed25519-secret";

/// Why a signature, or a key, was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The signature file is not a version 1 signature file; says what is wrong and where.
    MalformedSignature(String),
    /// The signature was made for a module with another hash.
    WrongModule { signed: [u8; 32], module: [u8; 32] },
    /// The signing key is not among the trusted keys.
    UntrustedKey { key: [u8; 32] },
    /// The ed25519 signature does not verify: the file was altered after signing, or the
    /// signature was not made by the key it names.
    BadSignature,
    /// A key file or key could not be read; says what is wrong.
    MalformedKey(String),
    /// The module to sign is not a valid, intact SMF module.
    Module(smf_format::Error),
    /// No random bytes could be obtained for a new key.
    Random(String),
    /// A file could not be read or written.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MalformedSignature(problem) => write!(f, "malformed signature file: {problem}"),
            Error::WrongModule { signed, module } => write!(
                f,
                "the signature is for module hash {} but the module hashes to {} (signature of another module, or the module changed)",
                hex(signed),
                hex(module)
            ),
            Error::UntrustedKey { key } => {
                write!(f, "signed by key {}, which is not a trusted key", hex(key))
            }
            Error::BadSignature => f.write_str(
                "the ed25519 signature does not verify (the signature file was forged or damaged)",
            ),
            Error::MalformedKey(problem) => write!(f, "invalid key: {problem}"),
            Error::Module(source) => write!(f, "cannot sign: {source}"),
            Error::Random(problem) => write!(f, "cannot generate a key: {problem}"),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Module(source) => Some(source),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An ed25519 public key: the identity a host trusts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex(self.0.as_bytes()))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(self.0.as_bytes()))
    }
}

impl PublicKey {
    /// A key from its 32-byte encoding; refuses bytes that are not a point of the curve and
    /// small-order (weak) keys, under which a signature would prove nothing.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, Error> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| {
            Error::MalformedKey(format!("{} is not an ed25519 public key", hex(bytes)))
        })?;
        if key.is_weak() {
            return Err(Error::MalformedKey(format!(
                "{} is a weak (small-order) ed25519 public key",
                hex(bytes)
            )));
        }
        Ok(PublicKey(key))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The key file line: `smf-ed25519-public <64 hex digits>` and a newline.
    pub fn to_text(&self) -> String {
        format!("{PUBLIC_KEY_TAG} {self}\n")
    }

    /// Reads every public key of a key file: one `smf-ed25519-public` line per key; empty
    /// lines and lines starting with `#` are ignored. At least one key is required.
    pub fn parse_list(text: &str) -> Result<Vec<PublicKey>, Error> {
        let mut keys = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bytes = key_line(line, PUBLIC_KEY_TAG).map_err(|problem| {
                Error::MalformedKey(format!("line {}: {problem}", number + 1))
            })?;
            keys.push(PublicKey::from_bytes(&bytes)?);
        }
        if keys.is_empty() {
            return Err(Error::MalformedKey(format!(
                "no `{PUBLIC_KEY_TAG}` line: not a public key file"
            )));
        }
        Ok(keys)
    }

    /// Reads a public key file (see [`PublicKey::parse_list`]).
    pub fn read_file(path: &Path) -> Result<Vec<PublicKey>, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        PublicKey::parse_list(&text).map_err(|e| match e {
            Error::MalformedKey(problem) => {
                Error::MalformedKey(format!("{}: {problem}", path.display()))
            }
            other => other,
        })
    }
}

/// An ed25519 secret key (its 32-byte seed). Its `Debug` output does not show the key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", self.public_key())
    }
}

impl SecretKey {
    /// A new key from the operating system's random number generator.
    pub fn generate() -> Result<SecretKey, Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| Error::Random(e.to_string()))?;
        Ok(SecretKey::from_seed(seed))
    }

    /// The key with this seed (RFC 8032's 32-byte private key).
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(&seed))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The key file line: `smf-ed25519-secret <64 hex digits of the seed>` and a newline.
    pub fn to_text(&self) -> String {
        format!("{SECRET_KEY_TAG} {}\n", hex(self.0.as_bytes()))
    }

    /// Reads a secret key file: one `smf-ed25519-secret` line; empty lines and `#` comments
    /// are ignored.
    pub fn parse(text: &str) -> Result<SecretKey, Error> {
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let line = lines.next().ok_or_else(|| {
            Error::MalformedKey(format!("no `{SECRET_KEY_TAG}` line: not a secret key file"))
        })?;
        if lines.next().is_some() {
            return Err(Error::MalformedKey(
                "a secret key file holds exactly one key".into(),
            ));
        }
        key_line(line, SECRET_KEY_TAG)
            .map(SecretKey::from_seed)
            .map_err(Error::MalformedKey)
    }

    /// Reads a secret key file (see [`SecretKey::parse`]).
    pub fn read_file(path: &Path) -> Result<SecretKey, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        SecretKey::parse(&text).map_err(|e| match e {
            Error::MalformedKey(problem) => {
                Error::MalformedKey(format!("{}: {problem}", path.display()))
            }
            other => other,
        })
    }

    /// Signs a module hash: an ed25519 signature of [`DOMAIN`] followed by the hash.
    pub fn sign_hash(&self, module_hash: &[u8; 32]) -> ModuleSignature {
        ModuleSignature {
            public_key: self.public_key().to_bytes(),
            module_hash: *module_hash,
            signature: self.0.sign(&message(module_hash)).to_bytes(),
        }
    }
}

/// Parses `<tag> <64 hex digits>`.
fn key_line(line: &str, tag: &str) -> Result<[u8; 32], String> {
    let mut words = line.split_whitespace();
    let (Some(found), Some(digits), None) = (words.next(), words.next(), words.next()) else {
        return Err(format!("expected `{tag} <64 hex digits>`"));
    };
    if found != tag {
        return Err(format!("expected a `{tag}` line, found `{found}`"));
    }
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("`{tag}` must be followed by 64 hex digits"));
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(digits.as_bytes().chunks_exact(2)) {
        // Both characters are ASCII hex digits, checked above.
        let text = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
        *byte = u8::from_str_radix(text, 16).map_err(|e| e.to_string())?;
    }
    Ok(bytes)
}

/// The message an ed25519 signature of a module signs: [`DOMAIN`] then the module hash.
pub fn message(module_hash: &[u8; 32]) -> [u8; 56] {
    let mut message = [0u8; 56];
    message[..24].copy_from_slice(DOMAIN);
    message[24..].copy_from_slice(module_hash);
    message
}

/// A detached module signature: who signed, which module hash, and the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleSignature {
    pub public_key: [u8; 32],
    pub module_hash: [u8; 32],
    pub signature: [u8; 64],
}

impl ModuleSignature {
    /// Reads a signature file, checking its size, magic, version, algorithm and reserved bytes.
    /// Does not verify the signature: see [`verify_hash`].
    pub fn parse(bytes: &[u8]) -> Result<ModuleSignature, Error> {
        let bad = |problem: String| Err(Error::MalformedSignature(problem));
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            let found = &bytes[..bytes.len().min(MAGIC.len())];
            return bad(format!(
                "expected magic {} (\"SMFSIG\\0\\0\"), found {}",
                hex(&MAGIC),
                hex(found)
            ));
        }
        if bytes.len() != SIGNATURE_FILE_LEN {
            return bad(format!(
                "a version 1 signature file is {SIGNATURE_FILE_LEN:#x} bytes, this one is {:#x}",
                bytes.len()
            ));
        }
        let field = |range: std::ops::Range<usize>| &bytes[range];
        if bytes[0x08] != VERSION {
            return bad(format!(
                "version {} at offset 0x8 (this reader understands {VERSION})",
                bytes[0x08]
            ));
        }
        if bytes[0x09] != ALGORITHM_ED25519 {
            return bad(format!(
                "unknown algorithm {} at offset 0x9 (1 is ed25519)",
                bytes[0x09]
            ));
        }
        if let Some(at) = field(0x0a..0x10).iter().position(|&b| b != 0) {
            return bad(format!(
                "reserved byte at offset {:#x} is not zero",
                0x0a + at
            ));
        }
        let mut signature = ModuleSignature {
            public_key: [0; 32],
            module_hash: [0; 32],
            signature: [0; 64],
        };
        signature.public_key.copy_from_slice(field(0x10..0x30));
        signature.module_hash.copy_from_slice(field(0x30..0x50));
        signature.signature.copy_from_slice(field(0x50..0x90));
        Ok(signature)
    }

    /// The signature file's bytes.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_FILE_LEN] {
        let mut bytes = [0u8; SIGNATURE_FILE_LEN];
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[0x08] = VERSION;
        bytes[0x09] = ALGORITHM_ED25519;
        bytes[0x10..0x30].copy_from_slice(&self.public_key);
        bytes[0x30..0x50].copy_from_slice(&self.module_hash);
        bytes[0x50..0x90].copy_from_slice(&self.signature);
        bytes
    }
}

/// Checks that `signature` signs `module_hash` with one of the `trusted` keys, and returns
/// that key. `module_hash` must be the hash of the module's content as computed now (see
/// [`smf_format::compute_module_hash`]), never a value read from the file unchecked.
pub fn verify_hash<'k>(
    module_hash: &[u8; 32],
    signature: &ModuleSignature,
    trusted: &'k [PublicKey],
) -> Result<&'k PublicKey, Error> {
    if signature.module_hash != *module_hash {
        return Err(Error::WrongModule {
            signed: signature.module_hash,
            module: *module_hash,
        });
    }
    let key = trusted
        .iter()
        .find(|k| k.to_bytes() == signature.public_key)
        .ok_or(Error::UntrustedKey {
            key: signature.public_key,
        })?;
    let ed = ed25519_dalek::Signature::from_bytes(&signature.signature);
    key.0
        .verify_strict(&message(module_hash), &ed)
        .map_err(|_| Error::BadSignature)?;
    Ok(key)
}

/// Validates a whole module file (structure and module hash) and signs its hash. A corrupted
/// or truncated module is refused rather than signed.
pub fn sign_module(module: &[u8], key: &SecretKey) -> Result<ModuleSignature, Error> {
    let parsed = smf_format::Module::parse(module).map_err(Error::Module)?;
    parsed.verify_hash().map_err(Error::Module)?;
    Ok(key.sign_hash(&parsed.header().module_hash))
}

/// Checks a module file's signature against `trusted`: the hash is computed from `module`
/// itself, so the check holds whatever the header claims.
pub fn verify_module<'k>(
    module: &[u8],
    signature: &ModuleSignature,
    trusted: &'k [PublicKey],
) -> Result<&'k PublicKey, Error> {
    let hash = smf_format::compute_module_hash(module).map_err(Error::Module)?;
    verify_hash(&hash, signature, trusted)
}

/// Where the signature of the module at `module` lives: the same path with `.sig` appended
/// (`app.sme` → `app.sme.sig`).
pub fn signature_path(module: &Path) -> PathBuf {
    let mut path = module.as_os_str().to_owned();
    path.push(".sig");
    PathBuf::from(path)
}

/// Reads and parses the signature file at `path`.
///
/// This opens `path` with `File::open`, which waits for a writer if `path` is a FIFO. The
/// loader and `smf` refuse anything but a regular file first (`simple_loader`'s
/// `read_signature_file`); do the same where the path is not trusted, and pass the opened
/// file to [`read_signature`].
pub fn read_signature_file(path: &Path) -> Result<ModuleSignature, Error> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    read_signature(file, path)
}

/// Reads and parses a signature file from `file`, opened from `path` (named in errors). At
/// most one byte more than a signature file holds is read: a file that is far too large is
/// refused without reading it whole.
pub fn read_signature(file: impl std::io::Read, path: &Path) -> Result<ModuleSignature, Error> {
    use std::io::Read;
    let mut bytes = Vec::new();
    file.take(SIGNATURE_FILE_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() > SIGNATURE_FILE_LEN && bytes.starts_with(&MAGIC) {
        return Err(Error::MalformedSignature(format!(
            "a version 1 signature file is {SIGNATURE_FILE_LEN:#x} bytes, this one is larger"
        )));
    }
    ModuleSignature::parse(&bytes)
}

/// Writes a new key pair: the secret key to `secret` (created, never overwritten, readable by
/// its owner only) and the public key to `secret` + `.pub`. Returns the public key's path.
pub fn write_key_pair(secret_path: &Path, key: &SecretKey) -> Result<PathBuf, Error> {
    use std::io::Write;
    let public_path = {
        let mut p = secret_path.as_os_str().to_owned();
        p.push(".pub");
        PathBuf::from(p)
    };
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut secret = options.open(secret_path).map_err(io(secret_path))?;
    let mut public = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&public_path)
    {
        Ok(file) => file,
        Err(source) => {
            // Leave no half pair behind.
            let _ = std::fs::remove_file(secret_path);
            return Err(io(&public_path)(source));
        }
    };
    secret
        .write_all(key.to_text().as_bytes())
        .map_err(io(secret_path))?;
    public
        .write_all(key.public_key().to_text().as_bytes())
        .map_err(io(&public_path))?;
    Ok(public_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed([n; 32])
    }

    #[test]
    fn round_trip_and_layout() {
        let hash = [0x5a; 32];
        let sig = key(1).sign_hash(&hash);
        let bytes = sig.to_bytes();
        assert_eq!(&bytes[..8], b"SMFSIG\0\0");
        assert_eq!(bytes[8..16], [1, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[0x10..0x30], key(1).public_key().to_bytes());
        assert_eq!(bytes[0x30..0x50], hash);
        assert_eq!(ModuleSignature::parse(&bytes).unwrap(), sig);
    }

    #[test]
    fn every_field_is_checked() {
        let hash = [3; 32];
        let trusted = [key(1).public_key()];
        let good = key(1).sign_hash(&hash).to_bytes();
        // Any flipped bit anywhere is refused, by the parser or by verification.
        for byte in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good;
                bad[byte] ^= 1 << bit;
                let verdict =
                    ModuleSignature::parse(&bad).and_then(|s| verify_hash(&hash, &s, &trusted));
                assert!(
                    verdict.is_err(),
                    "bit {bit} of byte {byte:#x} went unnoticed"
                );
            }
        }
        // Every length but the right one is refused.
        for len in 0..good.len() + 8 {
            let mut bytes = good.to_vec();
            bytes.resize(len, 0);
            assert_eq!(ModuleSignature::parse(&bytes).is_ok(), len == good.len());
        }
    }

    #[test]
    fn untrusted_key_wrong_module_and_forgery_are_told_apart() {
        let hash = [9; 32];
        let sig = key(2).sign_hash(&hash);
        let trusted = [key(1).public_key()];
        assert!(matches!(
            verify_hash(&hash, &sig, &trusted),
            Err(Error::UntrustedKey { .. })
        ));
        let trusted = [key(1).public_key(), key(2).public_key()];
        assert_eq!(verify_hash(&hash, &sig, &trusted).unwrap(), &trusted[1]);
        assert!(matches!(
            verify_hash(&[8; 32], &sig, &trusted),
            Err(Error::WrongModule { .. })
        ));
        // A signature by key 2 relabelled as key 1's.
        let forged = ModuleSignature {
            public_key: key(1).public_key().to_bytes(),
            ..sig
        };
        assert!(matches!(
            verify_hash(&hash, &forged, &trusted),
            Err(Error::BadSignature)
        ));
        // The same key signing the bare hash (no domain prefix) does not verify.
        let bare = ModuleSignature {
            signature: key(2).0.sign(&hash).to_bytes(),
            ..sig
        };
        assert!(matches!(
            verify_hash(&hash, &bare, &trusted),
            Err(Error::BadSignature)
        ));
    }

    #[test]
    fn key_files_round_trip_and_reject_garbage() {
        let secret = key(4);
        assert_eq!(
            SecretKey::parse(&secret.to_text()).unwrap().to_text(),
            secret.to_text()
        );
        let text = format!(
            "# trusted\n{}\n{}",
            key(4).public_key().to_text(),
            key(5).public_key().to_text()
        );
        let keys = PublicKey::parse_list(&text).unwrap();
        assert_eq!(keys, vec![key(4).public_key(), key(5).public_key()]);
        for bad in [
            "",
            "# nothing",
            "smf-ed25519-public",
            "smf-ed25519-public 00",
            "smf-ed25519-secret 0000000000000000000000000000000000000000000000000000000000000000",
            "smf-ed25519-public zz00000000000000000000000000000000000000000000000000000000000000",
            "smf-ed25519-public 0000000000000000000000000000000000000000000000000000000000000000 x",
        ] {
            assert!(PublicKey::parse_list(bad).is_err(), "{bad:?}");
        }
        // The identity point is a valid encoding but a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let message = PublicKey::from_bytes(&identity).unwrap_err().to_string();
        assert!(message.contains("weak"), "{message}");
        // A public key file is not a secret key file, and the reverse.
        assert!(SecretKey::parse(&key(4).public_key().to_text()).is_err());
        assert!(PublicKey::parse_list(&key(4).to_text()).is_err());
        // Debug never prints the secret.
        let seed_hex = hex(&[4; 32]);
        assert!(!format!("{secret:?}").contains(&seed_hex));
    }

    #[test]
    fn signature_files_are_read_whole_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = signature_path(&dir.path().join("m.smf"));
        assert!(path.ends_with("m.smf.sig"));
        let signature = key(6).sign_hash(&[1; 32]);
        std::fs::write(&path, signature.to_bytes()).unwrap();
        assert_eq!(read_signature_file(&path).unwrap(), signature);
        // A huge file is refused after reading one byte more than a signature.
        let mut big = signature.to_bytes().to_vec();
        big.resize(1 << 20, 0);
        std::fs::write(&path, &big).unwrap();
        let message = read_signature_file(&path).unwrap_err().to_string();
        assert!(message.contains("this one is larger"), "{message}");
        assert!(matches!(
            read_signature_file(&dir.path().join("absent.sig")),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn key_pair_files_are_new_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let secret_path = dir.path().join("release");
        let key = SecretKey::generate().unwrap();
        let public_path = write_key_pair(&secret_path, &key).unwrap();
        assert_eq!(public_path, dir.path().join("release.pub"));
        assert_eq!(
            SecretKey::read_file(&secret_path).unwrap().to_text(),
            key.to_text()
        );
        assert_eq!(
            PublicKey::read_file(&public_path).unwrap(),
            vec![key.public_key()]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&secret_path)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Never overwrites.
        assert!(write_key_pair(&secret_path, &key).is_err());
        // Two generated keys differ.
        assert_ne!(
            SecretKey::generate().unwrap().to_text(),
            SecretKey::generate().unwrap().to_text()
        );
    }
}
