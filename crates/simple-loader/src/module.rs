//! A loaded module and the handles it gives out.

use std::any::Any;
use std::ffi::{CString, c_char, c_int};
use std::marker::PhantomData;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use smf_format::{Module as Parsed, ModuleFlags, SymbolKind};

use crate::arguments::Argv;
use crate::error::LoadError;
use crate::image::Image;
use crate::sys::FileMap;

/// The bytes of a module file: read into memory, or mapped from the file (zero-copy; see
/// `LoadOptions::map_file`).
#[derive(Debug)]
pub(crate) enum FileBytes {
    Owned(Box<[u8]>),
    Mapped(FileMap),
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Owned(bytes) => bytes,
            FileBytes::Mapped(map) => map.bytes(),
        }
    }
}

self_cell::self_cell!(
    /// The file bytes and the validated view that borrows them.
    pub(crate) struct ParsedFile {
        owner: FileBytes,
        #[covariant]
        dependent: Parsed,
    }
    impl {Debug}
);

/// Parses `bytes` held in memory, for tests of what is built from a parsed file.
#[cfg(test)]
pub(crate) fn parse_owned(bytes: Vec<u8>) -> Arc<ParsedFile> {
    let bytes = FileBytes::Owned(bytes.into_boxed_slice());
    Arc::new(ParsedFile::try_new(bytes, |bytes| Parsed::parse(bytes)).expect("a valid module"))
}

/// A module mapped into the process, relocated, linked, and with its constructors run.
///
/// Dropping it runs its destructors and unmaps its image. Modules it imports from are kept
/// alive by it, so they are unmapped only after it.
pub struct Module {
    // Field order is drop order: the image goes first, then the libraries and the modules
    // its code referred to.
    image: Image,
    /// Shared with the symbolizer's entry, which reads names from its symbol table.
    file: Arc<ParsedFile>,
    name: String,
    path: Option<PathBuf>,
    /// Needed native libraries, open for as long as the image may call into them.
    _natives: Vec<crate::sys::NativeLibrary>,
    providers: Vec<Arc<Module>>,
    /// What import addresses depend on besides provider modules (a registry's slots).
    _keep_alive: Vec<Arc<dyn Any + Send + Sync>>,
    /// Earlier versions this one must outlive: kept data of this version points into them.
    retained: Mutex<Vec<Arc<Module>>>,
    /// The `argv` its constructors and [`Module::run_main_as_loaded`] receive, which module
    /// code may keep pointers into; `None` for the process's own, which never goes away.
    arguments: Option<Arc<Argv>>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name)
            .field("base", &format_args!("{:#x}", self.image.base()))
            .field("len", &format_args!("{:#x}", self.image.len()))
            .field(
                "providers",
                &self.providers.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A function of a module, usable as `F` while the module is borrowed.
///
/// Like `libloading::Symbol`, the lifetime ties the handle to the module, so the handle cannot
/// outlive the code it points to. The `F` it dereferences to is a plain function pointer and
/// can be copied out (`*symbol`); such a copy is not tied to anything, and calling it after the
/// module is dropped calls unmapped memory. Keep the `Symbol`, or hold the module (`Arc`,
/// [`Pinned`](crate::Pinned)) for as long as a copy may be called.
#[derive(Debug, Clone, Copy)]
pub struct Symbol<'module, F> {
    value: F,
    _module: PhantomData<&'module Module>,
}

impl<F> Deref for Symbol<'_, F> {
    type Target = F;
    fn deref(&self) -> &F {
        &self.value
    }
}

/// A data symbol of a module: its address and size, valid while the module is borrowed.
#[derive(Debug, Clone, Copy)]
pub struct DataSymbol<'module> {
    address: usize,
    size: u64,
    kind: SymbolKind,
    _module: PhantomData<&'module Module>,
}

impl DataSymbol<'_> {
    pub fn address(&self) -> usize {
        self.address
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn kind(&self) -> SymbolKind {
        self.kind
    }

    /// The symbol's address as a pointer to `T`, when a `T` fits in the symbol's size.
    pub fn as_ptr<T>(&self) -> Option<*mut T> {
        (size_of::<T>() as u64 <= self.size).then_some(self.address as *mut T)
    }
}

impl Module {
    pub(crate) fn new(
        file: Arc<ParsedFile>,
        image: Image,
        name: String,
        path: Option<PathBuf>,
        natives: Vec<crate::sys::NativeLibrary>,
        providers: Vec<Arc<Module>>,
        keep_alive: Vec<Arc<dyn Any + Send + Sync>>,
        arguments: Option<Arc<Argv>>,
    ) -> Module {
        Module {
            image,
            file,
            name,
            path,
            _natives: natives,
            providers,
            _keep_alive: keep_alive,
            retained: Mutex::default(),
            arguments,
        }
    }

    /// Keeps `older` mapped for as long as this module lives.
    pub(crate) fn retain(&self, older: Arc<Module>) {
        self.retained
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(older);
    }

    /// The earlier versions this one keeps mapped.
    pub(crate) fn retained(&self) -> Vec<Arc<Module>> {
        self.retained
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn image(&self) -> &Image {
        &self.image
    }

    fn parsed(&self) -> &Parsed<'_> {
        self.file.borrow_dependent()
    }

    /// The validated file this module was loaded from: header, sections, symbols, imports.
    pub fn file(&self) -> &Parsed<'_> {
        self.parsed()
    }

    /// The name used in messages: the path, or `<memory>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Address of the first byte of the image.
    pub fn base(&self) -> usize {
        self.image.base()
    }

    /// Bytes of address space the image occupies.
    pub fn image_len(&self) -> usize {
        self.image.len()
    }

    pub fn source_hash(&self) -> u64 {
        self.parsed().header().source_hash
    }

    pub fn module_hash(&self) -> [u8; 32] {
        self.parsed().header().module_hash
    }

    pub fn is_reloadable(&self) -> bool {
        self.parsed()
            .header()
            .flags
            .contains(ModuleFlags::RELOADABLE)
    }

    pub fn is_executable(&self) -> bool {
        self.parsed().header().entry_point.is_some()
    }

    /// Modules this one imports symbols from (kept alive by it).
    pub fn providers(&self) -> &[Arc<Module>] {
        &self.providers
    }

    /// Exported symbols: name and kind, in symbol-table order.
    pub fn exports(&self) -> impl Iterator<Item = (&str, SymbolKind)> {
        self.parsed()
            .symbols()
            .exported()
            .map(|(_, s)| (s.name, s.kind))
    }

    /// The exported symbol `name` and its run-time value: an address for symbols in a section,
    /// the stored value for constants, types, traits and actors.
    pub fn export(&self, name: &str) -> Option<(smf_format::Symbol<'_>, usize)> {
        let symbol = self.parsed().lookup(name)?;
        let value = match symbol.section {
            Some(_) => self.image.base() + symbol.value as usize,
            None => symbol.value as usize,
        };
        Some((symbol, value))
    }

    /// A handle to the exported function `name`, typed as `F`.
    ///
    /// Fails if the symbol does not exist, is not a function, or `F` is not pointer-sized.
    ///
    /// # Safety
    /// `F` must be a function pointer type (such as `extern "C" fn(i32) -> i32`) whose
    /// signature and ABI match the function's definition; nothing in the file can prove it.
    /// A copy of the `F` taken out of the returned [`Symbol`] must not be called once this
    /// module is dropped: only the `Symbol` itself is tied to the module's lifetime.
    ///
    /// If the function reaches a reloadable module through a registry's slot (it or a function
    /// it calls imports one), a reload can replace that module while the call runs in it; the
    /// replaced version is freed once no *pinned* thread can be running it. Make such calls
    /// while the thread is pinned ([`Registry::pin`](crate::Registry::pin)) whenever a reload
    /// can happen meanwhile, or call through a [`Current`](crate::Current) handle.
    pub unsafe fn get<F: Copy>(&self, name: &str) -> Result<Symbol<'_, F>, LoadError> {
        if size_of::<F>() != size_of::<usize>() {
            return Err(LoadError::NotPointerSized {
                name: name.to_owned(),
                size: size_of::<F>(),
            });
        }
        let (symbol, address) = self.export(name).ok_or_else(|| self.not_found(name))?;
        if symbol.kind != SymbolKind::Function {
            return Err(LoadError::WrongSymbolKind {
                module: self.name.clone(),
                name: name.to_owned(),
                expected: "function",
                found: symbol.kind,
            });
        }
        // SAFETY: F is pointer-sized (checked above) and, by the caller's contract, a function
        // pointer type matching the code at `address`, which lives as long as `self`.
        Ok(Symbol {
            value: unsafe { std::mem::transmute_copy::<usize, F>(&address) },
            _module: PhantomData,
        })
    }

    /// The type the module records for its exported symbol `name` (`docs/FORMAT.md`, *Type
    /// information*), with everything it reaches; `None` if there is no such export or the
    /// module records no type for it.
    pub fn type_of(&self, name: &str) -> Option<smf_format::typeinfo::OwnedType> {
        let symbol = self.parsed().lookup(name)?;
        let types = self.parsed().types();
        types.get(symbol.type_id)?;
        Some(smf_format::typeinfo::OwnedType::copy_of(
            types,
            symbol.type_id,
        ))
    }

    /// Checks that exported symbol `name` has the type `expected` (a `*void` there accepts any
    /// pointer, a `struct s` with no layout any struct `s`). A symbol for which the module
    /// records no type passes: there is nothing to check it against.
    pub fn check_type(
        &self,
        name: &str,
        expected: &smf_format::typeinfo::OwnedType,
    ) -> Result<(), LoadError> {
        let symbol = self
            .parsed()
            .lookup(name)
            .ok_or_else(|| self.not_found(name))?;
        let types = self.parsed().types();
        if types.get(symbol.type_id).is_none() {
            return Ok(());
        }
        let (want, id) = expected.view();
        smf_format::typeinfo::compare(
            &want,
            id,
            types,
            symbol.type_id,
            smf_format::typeinfo::Match::Expectation,
        )
        .map_err(|difference| LoadError::TypeMismatch {
            module: self.name.clone(),
            name: name.to_owned(),
            problem: format!(
                "expected {expected}, the module has {} ({difference})",
                types.display(symbol.type_id)
            ),
        })
    }

    /// [`Module::get`], refusing a function whose type the module records and which is not
    /// `F` ([`smf_format::typeinfo::CType`] describes `extern "C" fn` types of integers,
    /// floats and pointers).
    ///
    /// # Safety
    /// As for [`Module::get`]: the check catches a module built against another signature,
    /// but a module without recorded types, or one that lies, is not checked.
    pub unsafe fn get_checked<F: Copy + smf_format::typeinfo::CType>(
        &self,
        name: &str,
    ) -> Result<Symbol<'_, F>, LoadError> {
        // SAFETY: the caller's contract.
        let symbol = unsafe { self.get::<F>(name)? };
        self.check_type(name, &smf_format::typeinfo::describe::<F>())?;
        Ok(symbol)
    }

    /// The exported data symbol `name` (any kind but function).
    pub fn data(&self, name: &str) -> Result<DataSymbol<'_>, LoadError> {
        let (symbol, address) = self.export(name).ok_or_else(|| self.not_found(name))?;
        if symbol.kind == SymbolKind::Function {
            return Err(LoadError::WrongSymbolKind {
                module: self.name.clone(),
                name: name.to_owned(),
                expected: "data",
                found: symbol.kind,
            });
        }
        Ok(DataSymbol {
            address,
            size: symbol.size,
            kind: symbol.kind,
            _module: PhantomData,
        })
    }

    /// A handle to the entry point, typed as `F`.
    ///
    /// # Safety
    /// As for [`Module::get`]: `F` must match the entry function's signature.
    pub unsafe fn entry<F: Copy>(&self) -> Result<Symbol<'_, F>, LoadError> {
        if size_of::<F>() != size_of::<usize>() {
            return Err(LoadError::NotPointerSized {
                name: "entry point".into(),
                size: size_of::<F>(),
            });
        }
        let offset =
            self.parsed()
                .header()
                .entry_point
                .ok_or_else(|| LoadError::NotExecutable {
                    module: self.name.clone(),
                })?;
        let address = self.image.base() + offset as usize;
        // SAFETY: as in `get`; the reader checked the entry point lies in a code section.
        Ok(Symbol {
            value: unsafe { std::mem::transmute_copy::<usize, F>(&address) },
            _module: PhantomData,
        })
    }

    /// Calls the entry point as C's `int main(int argc, char **argv)` with `args` (the first
    /// being the program name) and returns its result.
    ///
    /// # Safety
    /// The module's entry point must have that signature. Its code runs with the process's
    /// full privileges, like any native code.
    pub unsafe fn run_main(&self, args: &[String]) -> Result<i32, LoadError> {
        // SAFETY: the caller guarantees the signature.
        let main = unsafe { self.entry::<extern "C" fn(c_int, *mut *mut c_char) -> c_int>()? };
        // Arguments with interior NUL bytes cannot reach C; they are cut at the first NUL.
        let owned: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.split('\0').next().unwrap_or_default()).unwrap_or_default())
            .collect();
        let mut argv: Vec<*mut c_char> = owned.iter().map(|a| a.as_ptr() as *mut c_char).collect();
        argv.push(std::ptr::null_mut());
        let argc = c_int::try_from(owned.len()).unwrap_or(c_int::MAX);
        Ok(crate::sys::call_main(*main, argc, argv.as_mut_ptr()))
    }

    /// The handles inside this module's image that exit handlers were registered with
    /// (normally its `__dso_handle`), taken from the loader's record of `__cxa_atexit` calls
    /// by module code (`runtime::exit_handles`): whichever module made the call, and without
    /// searching the symbol table.
    fn dso_handles(&self) -> Vec<usize> {
        let base = self.image.base();
        crate::runtime::exit_handles(base..base + self.image.len())
    }

    fn not_found(&self, name: &str) -> LoadError {
        LoadError::SymbolNotFound {
            module: self.name.clone(),
            name: name.to_owned(),
        }
    }

    /// The `argc` and `argv` of this module's constructors (see
    /// [`LoadOptions::with_arguments`](crate::LoadOptions::with_arguments)): valid for as long
    /// as the module is loaded.
    fn arguments(&self) -> (c_int, *mut *mut c_char) {
        match &self.arguments {
            Some(argv) => (argv.argc(), argv.argv()),
            None => crate::sys::process_arguments(),
        }
    }

    /// Calls the entry point as C's `int main(int argc, char **argv)` with the arguments its
    /// constructors received (those of
    /// [`LoadOptions::with_arguments`](crate::LoadOptions::with_arguments), or the process's
    /// own), the same array at the same address, and returns its result. Unlike
    /// [`Module::run_main`], the array outlives the call: it stays valid as long as the
    /// module, so destructors and exit handlers may still read pointers `main` kept.
    ///
    /// # Safety
    /// As for [`Module::run_main`].
    pub unsafe fn run_main_as_loaded(&self) -> Result<i32, LoadError> {
        // SAFETY: the caller guarantees the signature.
        let main = unsafe { self.entry::<extern "C" fn(c_int, *mut *mut c_char) -> c_int>()? };
        let (argc, argv) = self.arguments();
        Ok(crate::sys::call_main(*main, argc, argv))
    }

    /// Runs the constructors in file order, each as glibc calls them:
    /// `f(argc, argv, envp)`.
    ///
    /// # Safety
    /// Must be called once, right after the image is complete.
    pub(crate) unsafe fn run_constructors(&self) {
        let (argc, argv) = self.arguments();
        for &offset in self.parsed().init_array() {
            // SAFETY: the caller runs this once, on a complete image. The reader checked the
            // offset lies in a code section of this image, which is mapped read+execute. A
            // constructor declared without parameters ignores the three arguments, as the
            // C calling convention allows (the caller owns argument registers).
            let f = unsafe {
                std::mem::transmute::<usize, extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char)>(
                    self.image.base() + offset as usize,
                )
            };
            // Read before each call: a constructor may change the environment.
            f(argc, argv, crate::sys::environment());
        }
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        // As glibc does when it closes a shared object: first the exit handlers registered
        // with `atexit`/`__cxa_atexit` against the module's `__dso_handle` (C++ static
        // destructors among them), so none is left to run into unmapped code at exit; then
        // the module's destructors.
        for handle in self.dso_handles() {
            // SAFETY: `handle` lies in this module's image, which is still mapped; the C
            // library runs and forgets exactly the handlers registered with it.
            unsafe { crate::sys::cxa_finalize(handle as *mut core::ffi::c_void) };
        }
        // SAFETY: drop runs once; the image stays mapped until the fields drop after this.
        unsafe { self.run_destructors() };
    }
}

/// Modules handed to [`Module::keep_until_exit`], whose destructors run at process exit.
static KEPT: std::sync::Mutex<Vec<&'static Module>> = std::sync::Mutex::new(Vec::new());

extern "C" fn run_kept_destructors() {
    let kept = std::mem::take(&mut *KEPT.lock().unwrap_or_else(|p| p.into_inner()));
    for module in kept.into_iter().rev() {
        // SAFETY: each module is leaked, so its image is still mapped, and it is taken out of
        // the list before its destructors run, so they run once.
        unsafe { module.run_destructors() };
    }
}

impl Module {
    /// Keeps the module mapped for the rest of the process and runs its destructors at exit,
    /// as a native program's are: after the `atexit` handlers registered later (by `main`,
    /// say) and before C stdio buffers are flushed. This is how `smf run` runs a program.
    pub fn keep_until_exit(self) -> &'static Module {
        let module: &'static Module = Box::leak(Box::new(self));
        let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
        if kept.is_empty() {
            crate::sys::at_exit(run_kept_destructors);
        }
        kept.push(module);
        module
    }

    /// # Safety
    /// Must run at most once, while the image is mapped.
    unsafe fn run_destructors(&self) {
        for &offset in self.parsed().fini_array() {
            // SAFETY: the caller runs this once, while the image is mapped; the reader checked
            // each offset lies in a code section of this image, which is mapped read+execute.
            // Destructors take no arguments, as glibc calls them.
            let f = unsafe {
                std::mem::transmute::<usize, extern "C" fn()>(self.image.base() + offset as usize)
            };
            f();
        }
    }
}
