//! Loading: file → validated module → resolved imports → mapped image → constructors.

use std::any::Any;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use smf_format::{Binding, Import, ImportKind, Limits, Module as Parsed, ModuleFlags, Platform};

use crate::arguments::Argv;
use crate::error::LoadError;
use crate::image::{Image, Source};
use crate::module::{FileBytes, Module, ParsedFile};
use crate::signature::SignaturePolicy;
use crate::sys::{FileMap, NativeKind};

/// Settings of a load, built from [`LoadOptions::default`] with the `with_*` setters:
///
/// ```
/// use simple_loader::LoadOptions;
/// let options = LoadOptions::default().with_verify_hash(true);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadOptions {
    pub(crate) limits: Limits,
    pub(crate) verify_hash: bool,
    pub(crate) signature: SignaturePolicy,
    pub(crate) map_file: bool,
    pub(crate) map_reloadable: bool,
    pub(crate) debugger: bool,
    /// The `argc`/`argv` of constructors; the process's own when `None`.
    pub(crate) arguments: Option<Arc<Argv>>,
    pub(crate) type_changes: TypeChanges,
}

/// What a reload does when a function that a `Current` handle or another module is linked
/// to changed type between the running version and the new one (both record types, see
/// `docs/FORMAT.md`, *Type information*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TypeChanges {
    /// Refuse the reload, naming the function and the difference; nothing switches.
    #[default]
    Refuse,
    /// Let the reload through and list each change in [`crate::ReloadReport::type_changes`]:
    /// the caller promises that its handles and the importing modules agree with the new types.
    Report,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            limits: Limits::default(),
            verify_hash: false,
            signature: SignaturePolicy::Ignore,
            map_file: true,
            map_reloadable: false,
            debugger: false,
            arguments: None,
            type_changes: TypeChanges::Refuse,
        }
    }
}

impl LoadOptions {
    /// Bounds applied while parsing the file.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Check the module hash (BLAKE3 of the whole file) before anything else is done with
    /// the content. Off by default, as `dlopen` and wasmtime check nothing of the kind: it
    /// reads every page of the file, which for a module of a megabyte cost more than the
    /// rest of the load together (`docs/PERFORMANCE.md`). A host that wants accidental
    /// corruption caught (a truncated copy, a flipped bit) turns it on; `smf run` and `smf
    /// call` do. The hash is no defence against a crafted file, which can carry a matching
    /// hash: requiring a signature ([`LoadOptions::with_signature`]) is, and a signature
    /// check always hashes the bytes it vouches for, whatever this says. With it off, a
    /// reload tells the running version by the module hash stored in the file's header,
    /// without hashing (`docs/RELOAD.md`).
    pub fn with_verify_hash(mut self, verify: bool) -> Self {
        self.verify_hash = verify;
        self
    }

    /// Whether a module must carry a signature by a trusted key (checked right after the
    /// module hash, before anything of the module is used). [`SignaturePolicy::Ignore`] by
    /// default.
    pub fn with_signature(mut self, policy: SignaturePolicy) -> Self {
        self.signature = policy;
        self
    }

    /// What a reload does with a function, linked to a handle or an importer, whose recorded
    /// type changed: [`TypeChanges::Refuse`] (the default) or [`TypeChanges::Report`].
    pub fn with_type_changes(mut self, policy: TypeChanges) -> Self {
        self.type_changes = policy;
        self
    }

    /// Map a module file's section payloads straight from the file (private, copy-on-write
    /// mappings), so that a load copies only the pages its relocations write. On by default.
    ///
    /// A mapped file must not be rewritten in place while the module is loaded (see the
    /// `# Safety` of [`load`]): replace it with a new file (write elsewhere and rename), as
    /// compilers and linkers do. Modules packed `--reloadable`, whose files are rebuilt while
    /// they run, are read into memory unless [`LoadOptions::with_map_reloadable`] says
    /// otherwise; loads that require a signature (the checked bytes must be the bytes used)
    /// always are.
    pub fn with_map_file(mut self, map: bool) -> Self {
        self.map_file = map;
        self
    }

    /// Map modules packed `--reloadable` from their files too, as every other module is (with
    /// [`LoadOptions::with_map_file`] on and no signature required), instead of reading them
    /// into memory. Off by default, so that a rebuild may rewrite a reloadable module's file
    /// in place. On, a load and a reload copy no code (a reload of SQLite's 1.1 MB module
    /// spent about half its time reading and copying the file, `docs/PERFORMANCE.md`), and
    /// the rule of every mapped file holds for reloadable ones as well: **a new version must
    /// be written elsewhere and renamed over the file**, never written into it, or the
    /// running version's code changes under it (a truncation makes reading it fault).
    /// `smf pack` and `smf dev` replace files that way; `smf dev` turns this on.
    pub fn with_map_reloadable(mut self, map: bool) -> Self {
        self.map_reloadable = map;
        self
    }

    /// Describe the module's functions to debuggers when it is loaded (the GDB JIT
    /// interface, `docs/RUNTIME.md`), so that gdb and lldb name them in backtraces, walk
    /// through their frames and set breakpoints in them. Off by default: the description is
    /// an in-memory ELF object with a symbol per function and a copy of the unwind tables,
    /// made at every load, which took about a third of the time of loading SQLite and most
    /// of its heap. The `smf run` command turns it on. A debugger sees only the modules
    /// loaded with it on. (Crash reports and [`crate::symbolize`] need nothing: they read the
    /// module's symbol table when asked.)
    pub fn with_debugger(mut self, describe: bool) -> Self {
        self.debugger = describe;
        self
    }

    /// The program arguments the module's constructors receive, as glibc passes them, in
    /// `int argc, char **argv, char **envp` (C constructors may declare these parameters;
    /// Rust's standard library reads `std::env::args` from them). By default they are the
    /// process's own `argc` and `argv`; `smf run` passes the module's path and the arguments
    /// after it. An argument with an interior NUL byte is cut at the first NUL.
    ///
    /// The strings and the array are copied once, here, and every module loaded with these
    /// options keeps them, at the same addresses, for as long as it is loaded, so module code
    /// may keep `argv` pointers as C programs do. `envp` is the C library's `environ` at the
    /// time of the call, valid until the environment is next changed, as for a native library.
    /// Destructors receive no arguments.
    pub fn with_arguments<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.arguments = Some(Arc::new(Argv::new(args)));
        self
    }
}

/// Where an import was found by a resolver that runs before the loader's own search.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub address: usize,
    /// The module defining the symbol, kept alive by the importing module.
    pub provider: Option<Arc<Module>>,
    /// Anything else the address depends on (such as the indirection slots of a registry),
    /// kept alive by the importing module.
    pub keep_alive: Option<Arc<dyn Any + Send + Sync>>,
}

/// A resolver consulted first for each import; `Ok(None)` passes the import on to the
/// module's needed libraries and then to the process's global symbols, and `Err` refuses the
/// import with a reason (a definition of the wrong kind or type). It is given the importing
/// module's `typeinfo` table, which the import's `type_id` points into.
pub type ImportResolver<'r> = dyn Fn(&Import<'_>, &smf_format::typeinfo::TypeInfo<'_>) -> Result<Option<Resolution>, String>
    + 'r;

/// Called with the validated module before anything of it is set up (libraries opened,
/// imports resolved): the registry chooses the modules its dependencies name here.
pub(crate) type Prepare<'r> = dyn Fn(&Parsed<'_>) -> Result<(), LoadError> + 'r;

/// A module to load: a file, or bytes already in memory.
#[derive(Debug)]
pub enum ModuleSource<'a> {
    /// A module file, mapped or read as [`LoadOptions::with_map_file`] says.
    File(&'a Path),
    /// A module in memory; `name` stands for it in messages. It cannot have a signature file.
    Bytes { bytes: Vec<u8>, name: String },
}

impl<'a> From<&'a Path> for ModuleSource<'a> {
    fn from(path: &'a Path) -> Self {
        ModuleSource::File(path)
    }
}

impl<'a> From<&'a PathBuf> for ModuleSource<'a> {
    fn from(path: &'a PathBuf) -> Self {
        ModuleSource::File(path)
    }
}

/// Loads a module: validates it, maps it, resolves its imports (asking `resolver` first for
/// each, then the module's needed libraries, then the process's global symbols), relocates
/// it and runs its constructors.
///
/// # Safety
/// Loading runs native code: the module's constructors and those of its needed libraries,
/// with the process's full privileges. Validation and the module hash prove the file is
/// well-formed and intact, not that its code is safe to run; the caller vouches for it (or
/// requires a signature, [`LoadOptions::with_signature`]).
///
/// A file that is mapped ([`LoadOptions::with_map_file`], on by default) must not be
/// modified in place while the module is loaded: its pages are the module's code and data,
/// and writes to the file reach them after the hash was checked. Replace module files by
/// renaming a new file over them.
pub unsafe fn load<'a>(
    source: impl Into<ModuleSource<'a>>,
    options: &LoadOptions,
    resolver: Option<&ImportResolver<'_>>,
) -> Result<Module, LoadError> {
    let resolver = resolver.unwrap_or(&|_, _| Ok(None));
    match source.into() {
        ModuleSource::File(path) => load_path(path, options, resolver, &|_| Ok(())),
        ModuleSource::Bytes { bytes, name } => {
            load_hashed_bytes(bytes, None, name, None, options, resolver, &|_| Ok(()))
        }
    }
}

/// Reads or maps the module file at `path` and loads it.
pub(crate) fn load_path(
    path: &Path,
    options: &LoadOptions,
    resolver: &ImportResolver<'_>,
    prepare: &Prepare<'_>,
) -> Result<Module, LoadError> {
    load_path_if_changed(path, options, resolver, prepare, None).and_then(|loaded| {
        loaded.ok_or_else(|| LoadError::Io {
            path: path.to_owned(),
            source: std::io::Error::other("no running version to compare with"),
        })
    })
}

/// Reads or maps the module file at `path` and loads it, unless `running`, the module hash
/// of a version already running, says it holds that version: then `Ok(None)`, and nothing
/// is loaded. With the hash check on, the file's content is hashed once, for both the
/// comparison and the check; with it off, the hash its header stores is compared.
pub(crate) fn load_path_if_changed(
    path: &Path,
    options: &LoadOptions,
    resolver: &ImportResolver<'_>,
    prepare: &Prepare<'_>,
    running: Option<[u8; 32]>,
) -> Result<Option<Module>, LoadError> {
    let io_error = |source| LoadError::Io {
        path: path.to_owned(),
        source,
    };
    let (mut file, len) = crate::sys::open_module(path).map_err(io_error)?;
    let mappable = crate::sys::MAPS_FILES
        && options.map_file
        && matches!(options.signature, SignaturePolicy::Ignore);
    let bytes = match usize::try_from(len) {
        Ok(len) if mappable && len > 0 => {
            // The hash check reads every page: map them all now. Otherwise with room for the
            // image's zero pages, if it has any past the file's pages.
            let map = match zero_pages_past_file(&file, len, &options.limits) {
                room if room > 0 && !options.verify_hash => FileMap::with_room(&file, len, room)
                    .or_else(|_| FileMap::new(&file, len, false)),
                _ => FileMap::new(&file, len, options.verify_hash),
            }
            .map_err(io_error)?;
            let reloadable = is_reloadable(map.bytes());
            if !reloadable || options.map_reloadable {
                let hash = match running_hash(map.bytes(), options, running, path)? {
                    Compared::Same => return Ok(None),
                    Compared::Differs(hash) => hash,
                };
                return load_mapped(
                    map,
                    hash,
                    !reloadable,
                    &file,
                    path,
                    options,
                    resolver,
                    prepare,
                )
                .map(Some);
            }
            // Its file may be rewritten in place while it runs: keep a copy. Unless the whole
            // file is to be hashed, only its head is copied into memory, and the payloads are
            // read from the file straight into the image: each byte is copied once.
            match smf_format::head_len(map.bytes()).and_then(|head| usize::try_from(head).ok()) {
                Some(head) if !options.verify_hash => {
                    let head: Box<[u8]> = map.bytes().get(..head).unwrap_or_default().into();
                    drop(map);
                    if let Compared::Same = running_hash(&head, options, running, path)? {
                        return Ok(None);
                    }
                    return load_from(
                        FileBytes::Owned(head),
                        None,
                        Source::Read {
                            file: &file,
                            file_size: len as u64,
                        },
                        path.display().to_string(),
                        Some(path.to_owned()),
                        options,
                        resolver,
                        prepare,
                    )
                    .map(Some);
                }
                _ => FileBytes::Owned(map.bytes().into()),
            }
        }
        _ => {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).map_err(io_error)?;
            FileBytes::Owned(bytes.into_boxed_slice())
        }
    };
    let hash = match running_hash(&bytes, options, running, path)? {
        Compared::Same => return Ok(None),
        Compared::Differs(hash) => hash,
    };
    load_from(
        bytes,
        hash,
        Source::Memory,
        path.display().to_string(),
        Some(path.to_owned()),
        options,
        resolver,
        prepare,
    )
    .map(Some)
}

/// Whether a file holds the running version, by [`running_hash`].
enum Compared {
    Same,
    /// It does not (or nothing runs); the module hash of its content, if it was computed.
    Differs(Option<[u8; 32]>),
}

/// Compares the module hash of the file `bytes` with `running`'s: the hash of the content
/// with the hash check on (computed only once `head_len` finds a whole header and section
/// table, all the hash needs; a file without them is refused by the parser), the hash its
/// header stores with it off. Without a running version, nothing is compared or hashed.
fn running_hash(
    bytes: &[u8],
    options: &LoadOptions,
    running: Option<[u8; 32]>,
    path: &Path,
) -> Result<Compared, LoadError> {
    let Some(running) = running else {
        return Ok(Compared::Differs(None));
    };
    if !options.verify_hash {
        let stored = bytes.get(smf_format::raw::MODULE_HASH_RANGE);
        return Ok(if stored == Some(&running[..]) {
            Compared::Same
        } else {
            Compared::Differs(None)
        });
    }
    if smf_format::head_len(bytes).is_none() {
        return Ok(Compared::Differs(None));
    }
    let hash = smf_format::compute_module_hash(bytes).map_err(|source| LoadError::Format {
        module: path.display().to_string(),
        source,
    })?;
    Ok(if hash == running {
        Compared::Same
    } else {
        Compared::Differs(Some(hash))
    })
}

/// Loads the module in `map`, a read-only mapping of all of `file`, whose module hash is
/// `hash` if known.
///
/// When the file is laid out as the writer lays it out (the header and tables first, then the
/// payloads, see [`smf_format::head_len`]) and `split` allows, the mapping is split in two:
/// the head, which the module's parsed view keeps, and the payloads, which become the image.
/// The module hash is computed over the whole mapping first, before anything writes to it.
/// Without `split` (a reloadable module, whose file bytes a reload compares with the next
/// version's), the whole mapping stays the view and the payloads are mapped again from
/// `file` as the image.
fn load_mapped(
    map: FileMap,
    hash: Option<[u8; 32]>,
    split: bool,
    file: &File,
    path: &Path,
    options: &LoadOptions,
    resolver: &ImportResolver<'_>,
    prepare: &Prepare<'_>,
) -> Result<Module, LoadError> {
    let name = path.display().to_string();
    let head = smf_format::head_len(map.bytes()).and_then(|head| usize::try_from(head).ok());
    // Hashed only once `head_len` found a whole header and section table, all that
    // `compute_module_hash` needs; otherwise after parsing, as for any file.
    let hash = match head {
        _ if hash.is_some() => hash,
        Some(_) if options.verify_hash => Some(
            smf_format::compute_module_hash(map.bytes()).map_err(|source| LoadError::Format {
                module: name.clone(),
                source,
            })?,
        ),
        _ => None,
    };
    let split = match head {
        Some(head) if split => map.split(head),
        _ => Err(map),
    };
    let (bytes, source) = match split {
        Ok((head, tail)) => {
            let offset = head.bytes().len() as u64;
            let source = Source::Tail { file, tail, offset };
            (FileBytes::Mapped(head), source)
        }
        Err(map) => (FileBytes::Mapped(map), Source::File(file)),
    };
    let path = Some(path.to_owned());
    load_from(bytes, hash, source, name, path, options, resolver, prepare)
}

/// Bytes of zero pages the image of the module in `file` (`len` bytes) has past the file's
/// last page, when the file is laid out as the writer lays it out (its head, then the
/// payloads at their image offsets): read from its first page (one `pread`), so that the
/// file can be mapped with room for them, instead of its mapping moved to grow it. 0 when
/// there are none, or the first page does not tell (the parse then finds what is wrong).
fn zero_pages_past_file(file: &File, len: usize, limits: &smf_format::Limits) -> usize {
    let mut first = [0u8; 4096];
    let Ok(read) = crate::sys::read_at(file, &mut first, 0) else {
        return 0;
    };
    let first = first.get(..read).unwrap_or(&[]);
    let Some(head) = smf_format::head_len_of(first, len as u64) else {
        return 0;
    };
    let at = std::mem::offset_of!(smf_format::raw::Header, image_size);
    let image_size = first
        .get(at..at + 8)
        .and_then(|bytes| bytes.try_into().ok())
        .map_or(0, u64::from_le_bytes)
        .min(limits.max_image_size);
    let end = head
        .saturating_add(image_size)
        .next_multiple_of(crate::sys::PAGE_SIZE as u64);
    usize::try_from(end.saturating_sub((len as u64).next_multiple_of(crate::sys::PAGE_SIZE as u64)))
        .unwrap_or(0)
}

/// Whether the header's flags (offset 0x08, see `docs/FORMAT.md`) say `RELOADABLE`. Only
/// chooses how to hold the file; the parser validates the header as for any file.
fn is_reloadable(bytes: &[u8]) -> bool {
    bytes
        .get(8..12)
        .and_then(|flags| flags.try_into().ok())
        .is_some_and(|flags| {
            ModuleFlags(u32::from_le_bytes(flags)).contains(ModuleFlags::RELOADABLE)
        })
}

/// Loads a module from bytes in memory (read from `path`, if given); `hash`, if known, is the module hash of `bytes`, which the hash
/// check then compares instead of hashing them again.
#[allow(clippy::too_many_arguments)]
pub(crate) fn load_hashed_bytes(
    bytes: Vec<u8>,
    hash: Option<[u8; 32]>,
    name: String,
    path: Option<PathBuf>,
    options: &LoadOptions,
    resolver: &ImportResolver<'_>,
    prepare: &Prepare<'_>,
) -> Result<Module, LoadError> {
    let bytes = FileBytes::Owned(bytes.into_boxed_slice());
    load_from(
        bytes,
        hash,
        Source::Memory,
        name,
        path,
        options,
        resolver,
        prepare,
    )
}

/// Loads the module in `bytes`, whose module hash is `hash` if known. With a file `source`,
/// the image maps section payloads from it instead of copying them; with
/// [`Source::Tail`], `bytes` are the file's head and the payloads are in the tail.
#[allow(clippy::too_many_arguments)]
fn load_from(
    bytes: FileBytes,
    hash: Option<[u8; 32]>,
    source: Source<'_>,
    name: String,
    path: Option<PathBuf>,
    options: &LoadOptions,
    resolver: &ImportResolver<'_>,
    prepare: &Prepare<'_>,
) -> Result<Module, LoadError> {
    let file_size = match &source {
        Source::Tail { tail, offset, .. } => Some(offset + tail.bytes().len() as u64),
        Source::Read { file_size, .. } => Some(*file_size),
        Source::Memory | Source::File(_) => None,
    };
    let format_error = |source| LoadError::Format {
        module: name.clone(),
        source,
    };
    // Compressed tables are decompressed into a copy of the file, which is parsed instead
    // (its uncompressed payloads keep their file offsets, so they are still mapped from the
    // file). The module hash is of the file as stored: computed here, before, when it is to
    // be checked or a signature vouches for it.
    let (bytes, hash) = match file_size
        .is_none()
        .then(|| smf_format::expand_tables(&bytes, &options.limits))
        .transpose()
        .map_err(format_error)?
        .flatten()
    {
        None => (bytes, hash),
        Some(expanded) => {
            let hash = match hash {
                Some(hash) => Some(hash),
                None if options.verify_hash
                    || !matches!(options.signature, SignaturePolicy::Ignore) =>
                {
                    Some(smf_format::compute_module_hash(&bytes).map_err(format_error)?)
                }
                None => None,
            };
            (FileBytes::Owned(expanded.into_boxed_slice()), hash)
        }
    };
    let file = ParsedFile::try_new(bytes, |bytes| match file_size {
        Some(file_size) => Parsed::parse_head(bytes, file_size, &options.limits),
        None => Parsed::parse_with_limits(bytes, &options.limits),
    })
    .map_err(|source| LoadError::Format {
        module: name.clone(),
        source,
    })?;
    let file = Arc::new(file);
    let parsed = file.borrow_dependent();
    // A hash computed already (by a reload with the check on, to see whether the file
    // changed) is compared: the check is then free.
    if options.verify_hash || hash.is_some() {
        let checked = match hash {
            Some(computed) if computed != parsed.header().module_hash => {
                Err(smf_format::Error::HashMismatch {
                    stored: parsed.header().module_hash,
                    computed,
                })
            }
            Some(_) => Ok(()),
            None => parsed.verify_hash(),
        };
        checked.map_err(|source| LoadError::Format {
            module: name.clone(),
            source,
        })?;
    }
    crate::signature::check(
        &options.signature,
        parsed,
        options.verify_hash || hash.is_some(),
        path.as_deref(),
        &name,
    )?;
    check_target(parsed, &name)?;
    // The source map (a module packed from `-g` objects) is read by the crash handler, which
    // cannot validate it, and by the debugger's object: checked now when either will read it,
    // a broken one refusing the load; otherwise the first time something asks for a source
    // line (`symbolize`), a broken one then giving none.
    let source_map_checked = options.debugger || crate::runtime::crash_reports_wanted();
    if source_map_checked {
        parsed.source_map().map_err(|source| LoadError::Format {
            module: name.clone(),
            source,
        })?;
    }
    prepare(parsed)?;

    let mut natives = Vec::with_capacity(parsed.needed().len());
    // Their handles as `sys::symbol_address` takes them, valid while `natives` holds the
    // libraries open.
    let mut native_handles = Vec::with_capacity(parsed.needed().len());
    for library in parsed.needed() {
        // SAFETY: opening a native library runs its initialisers; needed libraries are
        // named by the module, which the caller chose to load and run anyway.
        let (opened, handle) = unsafe { crate::sys::open_library(library) }.map_err(|source| {
            LoadError::NativeLibrary {
                module: name.clone(),
                library: (*library).to_owned(),
                source,
            }
        })?;
        native_handles.push(handle);
        natives.push(opened);
    }
    let process = crate::process_imports::ProcessImports::new();
    let tls = crate::tls::TlsModule::for_module(parsed);
    let mut addresses = Vec::with_capacity(parsed.imports().len());
    let mut providers: Vec<Arc<Module>> = Vec::new();
    let mut keep_alive: Vec<Arc<dyn Any + Send + Sync>> = Vec::new();
    // The native code segments, read on the first function import resolved natively.
    let mut code_segments = None;
    for import in parsed.imports() {
        // `__tls_get_addr`, fork and quick-exit handler registration: the loader's own.
        if let Some(address) = crate::runtime::provided(import, tls.as_deref()) {
            addresses.push(address);
            continue;
        }
        let resolved =
            resolver(import, parsed.types()).map_err(|problem| LoadError::ImportMismatch {
                module: name.clone(),
                name: import.name.to_owned(),
                problem,
            })?;
        let address = match resolved {
            Some(Resolution {
                address,
                provider,
                keep_alive: keep,
            }) => {
                if let Some(provider) = provider {
                    if !providers.iter().any(|p| Arc::ptr_eq(p, &provider)) {
                        providers.push(provider);
                    }
                }
                if let Some(keep) = keep {
                    if !keep_alive.iter().any(|k| Arc::ptr_eq(k, &keep)) {
                        keep_alive.push(keep);
                    }
                }
                address
            }
            None => {
                let mismatch = |problem| LoadError::ImportMismatch {
                    module: name.clone(),
                    name: import.name.to_owned(),
                    problem,
                };
                // SAFETY: `native_handles` are the handles of `natives`, open until the module
                // that keeps them is dropped.
                let address = match unsafe { needed_lookup(&native_handles, import.name) } {
                    Some(address) => {
                        check_native_kind(import, address, &mut code_segments).map_err(mismatch)?;
                        Some(address)
                    }
                    None => process
                        .resolve(import.name, import.kind, |address| {
                            check_native_kind(import, address, &mut code_segments)
                        })
                        .map_err(mismatch)?,
                };
                address.unwrap_or(0)
            }
        };
        if address == 0 && import.binding != Binding::Weak {
            return Err(LoadError::UnresolvedImport {
                module: name,
                name: import.name.to_owned(),
            });
        }
        addresses.push(address);
    }

    // SAFETY: `load`'s caller vouched for the module's code; the image runs its indirect
    // function resolvers as it would run its constructors.
    let image = unsafe { Image::map(parsed, &addresses, tls.as_deref(), source) }.map_err(
        |(operation, source)| {
            if operation == crate::image::MAKING_STATIC_TLS {
                LoadError::StaticTls {
                    module: name.clone(),
                    reason: source.to_string(),
                }
            } else {
                LoadError::Memory {
                    module: name.clone(),
                    operation,
                    source,
                }
            }
        },
    )?;
    if let Some(tls) = &tls {
        tls.set_base(image.base());
    }
    // SAFETY: the image is complete and stays mapped until it is dropped, which detaches it.
    unsafe {
        crate::runtime::attach(
            &file,
            image.base(),
            image.len(),
            &name,
            tls,
            options.debugger,
            source_map_checked,
        )
    };
    let module = Module::new(
        file,
        image,
        name,
        path,
        natives,
        providers,
        keep_alive,
        options.arguments.clone(),
    );
    // SAFETY: the image is fully relocated and protected; constructors are the module's own
    // code, run once, in the order the file lists them, as a native loader would.
    unsafe { module.run_constructors() };
    Ok(module)
}

/// Looks `name` up in the needed libraries in order (before what the process has loaded,
/// `process_imports`).
///
/// # Safety
/// Every handle in `natives` must be the handle of a library that stays open until this
/// returns.
unsafe fn needed_lookup(natives: &[crate::sys::NativeHandle], name: &str) -> Option<usize> {
    natives
        .iter()
        // SAFETY: each handle is open (the caller's contract).
        .find_map(|&handle| unsafe { crate::sys::symbol_address(handle, name) })
}

/// Checks a natively resolved import against what the dynamic linker says is at `address`:
/// a function import must lead into an executable segment (so that a call never lands in
/// data), and a data import must not be an ELF function. The segments are read once per load.
fn check_native_kind(
    import: &Import<'_>,
    address: usize,
    code_segments: &mut Option<Vec<std::ops::Range<usize>>>,
) -> Result<(), String> {
    let where_defined = |object: &str| match object {
        "" => "the process".to_owned(),
        object => object.to_owned(),
    };
    match import.kind {
        ImportKind::Function => {
            if in_code(code_segments, address) {
                return Ok(());
            }
            let (kind, object) = crate::sys::native_symbol(address);
            let what = match kind {
                NativeKind::Data => "a data symbol",
                NativeKind::Code => "a function outside any executable segment",
                NativeKind::Unknown => "something outside any executable segment",
            };
            Err(format!(
                "the module calls it as a function, but {} defines it as {what} (at {address:#x})",
                where_defined(&object)
            ))
        }
        // An IFUNC resolves to an implementation no dynamic symbol names (`strlen` to
        // `__strlen_avx2`): an unnamed address in code is a function too. Named data in an
        // executable segment (old layouts put read-only data there) stays data.
        ImportKind::Data => match crate::sys::native_symbol(address) {
            (NativeKind::Code, object) => Err(format!(
                "the module uses it as data, but {} defines it as a function (at {address:#x})",
                where_defined(&object)
            )),
            (NativeKind::Unknown, object) if in_code(code_segments, address) => Err(format!(
                "the module uses it as data, but {} resolves it into code (at {address:#x}), \
                 as it does a function chosen at run time (IFUNC)",
                where_defined(&object)
            )),
            _ => Ok(()),
        },
        ImportKind::Any => Ok(()),
    }
}

/// Whether `address` lies in an executable segment of a loaded object; the segments are read
/// on first use.
fn in_code(code_segments: &mut Option<Vec<std::ops::Range<usize>>>, address: usize) -> bool {
    let segments = code_segments.get_or_insert_with(crate::sys::executable_segments);
    let after = segments.partition_point(|segment| segment.start <= address);
    after > 0 && segments[after - 1].contains(&address)
}

fn check_target(parsed: &Parsed<'_>, name: &str) -> Result<(), LoadError> {
    let header = parsed.header();
    if Some(header.arch) != crate::HOST_ARCH {
        return Err(LoadError::WrongArch {
            module: name.to_owned(),
            found: header.arch,
        });
    }
    if !platform_runs_on(header.platform, std::env::consts::OS) {
        return Err(LoadError::WrongPlatform {
            module: name.to_owned(),
            found: header.platform,
        });
    }
    // Sections start on the module's page boundaries; on a kernel with larger pages two of
    // them could share a page, which cannot have two protections (FORMAT.md, *Page size*).
    check_page_size(name, header.page_size, crate::sys::host_page_size())
}

/// Whether a module built for `platform` runs on the operating system `os` (as
/// `std::env::consts::OS` names it): a Linux loader refuses Windows modules and a Windows
/// loader Linux ones, as their imports, unwind tables and constructors differ.
fn platform_runs_on(platform: Platform, os: &str) -> bool {
    match platform {
        Platform::Any => true,
        Platform::Linux => os == "linux",
        Platform::Windows => os == "windows",
        Platform::MacOs => os == "macos",
    }
}

fn check_page_size(name: &str, module: u64, host: u64) -> Result<(), LoadError> {
    if host > module {
        return Err(LoadError::PageSize {
            module: name.to_owned(),
            module_page_size: module,
            host_page_size: host,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use smf_format::SectionKind;

    /// A reloadable module of read-only data and data: its file's bytes.
    fn reloadable_module() -> Vec<u8> {
        use smf_format::{ImageLayout, LoadedSection, ModuleBuilder, SectionKind};
        let mut b = ModuleBuilder::new();
        b.arch = crate::HOST_ARCH.unwrap();
        // Runs wherever the tests run (Linux, or Windows under Wine).
        b.platform = Platform::Any;
        b.flags = b.flags.union(ModuleFlags::RELOADABLE);
        let mut layout = ImageLayout::new();
        for (kind, name, len) in [
            (SectionKind::RoData, ".rodata", 5000u64),
            (SectionKind::Data, ".data", 16),
        ] {
            b.add_section(LoadedSection {
                kind,
                name,
                vaddr: layout.place(len).unwrap(),
                mem_size: len,
                align: 16,
                data: (0..len).map(|i| i as u8 | 1).collect(),
            });
        }
        b.write().unwrap()
    }

    /// Loads `bytes`' head, reading the payloads from the file at `path` as a load that saw
    /// `bytes` there when it opened it.
    fn load_read(bytes: &[u8], path: &Path) -> Result<Module, LoadError> {
        let head = smf_format::head_len(bytes).unwrap() as usize;
        let file = File::open(path).unwrap();
        let source = Source::Read {
            file: &file,
            file_size: bytes.len() as u64,
        };
        let name = path.display().to_string();
        let head = FileBytes::Owned(bytes[..head].into());
        let options = LoadOptions::default();
        load_from(
            head,
            None,
            source,
            name,
            None,
            &options,
            &|_, _| Ok(None),
            &|_| Ok(()),
        )
    }

    #[test]
    fn a_file_cut_short_while_its_payloads_are_read_is_refused() {
        let bytes = reloadable_module();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.smf");
        std::fs::write(&path, &bytes).unwrap();
        let module = load_read(&bytes, &path).unwrap();
        let sections = module.file().sections();
        let data = sections.iter().find(|s| s.kind == SectionKind::Data);
        let address = module.base() + data.unwrap().vaddr as usize;
        // SAFETY: the data section's 16 bytes, read+write for the module's life.
        let image = unsafe { std::slice::from_raw_parts(address as *const u8, 16) };
        let written: Vec<u8> = (0..16u8).map(|i| i | 1).collect();
        assert_eq!(image, written);
        // A rebuild truncates the file in place after the load read its size: inside the
        // last payload, and before the first.
        let head = smf_format::head_len(&bytes).unwrap() as usize;
        for cut in [bytes.len() - 8, head] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let error = load_read(&bytes, &path).unwrap_err();
            let cause = std::error::Error::source(&error).map(ToString::to_string);
            let error = format!("{error}: {}", cause.unwrap_or_default());
            assert!(
                error.contains("reading a section from the file") && error.contains("cut short"),
                "{error}"
            );
        }
    }

    #[test]
    fn each_operating_system_refuses_the_others_modules() {
        assert!(platform_runs_on(Platform::Linux, "linux"));
        assert!(platform_runs_on(Platform::Windows, "windows"));
        assert!(platform_runs_on(Platform::Any, "linux"));
        assert!(platform_runs_on(Platform::Any, "windows"));
        assert!(!platform_runs_on(Platform::Windows, "linux"));
        assert!(!platform_runs_on(Platform::Linux, "windows"));
        assert!(!platform_runs_on(Platform::MacOs, "windows"));
        assert!(!platform_runs_on(Platform::Linux, "macos"));
    }

    #[test]
    fn modules_laid_out_for_smaller_pages_than_the_kernel_are_refused() {
        assert!(check_page_size("m.smf", 0x10000, 0x1000).is_ok());
        assert!(check_page_size("m.smf", 0x4000, 0x4000).is_ok());
        let error = check_page_size("m.smf", 0x1000, 0x10000).unwrap_err();
        assert_eq!(
            error.to_string(),
            "m.smf: laid out for 4 KiB pages, smaller than this kernel's 64 KiB pages"
        );
        assert!(
            crate::sys::host_page_size().is_power_of_two()
                && crate::sys::host_page_size() >= 0x1000
        );
    }
}
