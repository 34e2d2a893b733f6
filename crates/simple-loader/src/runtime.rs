//! The process-wide presence of loaded modules: what the rest of the process must know about
//! a module for its code to behave like native code.
//!
//! When an image is mapped, [`attach`] registers its unwind tables with the C runtime's
//! unwinder (`sys::unwind`), describes its functions to debuggers (`jit`, the GDB JIT
//! interface) and, when asked, to profilers (`perfmap`), keeps its thread-local description
//! (`tls`) alive, and lists it for the symbolizer. [`detach`] undoes all of it when the image
//! is dropped, after the module's destructors ran and before its pages are unmapped, and
//! removes the fork and quick-exit handlers the module registered (`sys::exit_handlers`).
//!
//! A few imports are the loader's own functions rather than the C library's ([`provided`]):
//! `__tls_get_addr`, the registrations of fork and quick-exit handlers, and `__cxa_atexit`,
//! which registers with the C library but notes the handle first, so that unloading a
//! module finalizes exactly the handles inside its image that have exit handlers
//! ([`exit_handles`]), however the registration reached `__cxa_atexit`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{c_int, c_void};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use smf_format::{Import, SectionKind};

use crate::jit::JitRegistration;
use crate::module::ParsedFile;
use crate::symbolize::ModuleSymbols;
use crate::sys::tls_callbacks::TlsCallbacks;
use crate::sys::unwind::UnwindRegistration;
use crate::tls::TlsModule;

/// Everything registered for one mapped image. Field order is drop order: a Windows module's
/// TLS callbacks are called with `DLL_PROCESS_DETACH` first, while its unwind tables are
/// still registered; unwind tables and debugger entries go next, the thread-local
/// description last.
#[derive(Debug)]
struct Attachments {
    _tls_callbacks: Option<TlsCallbacks>,
    symbols: ModuleSymbols,
    _unwind: Vec<UnwindRegistration>,
    _jit: Option<JitRegistration>,
    _tls: Option<Box<TlsModule>>,
}

/// Mapped images by base address.
static LOADED: RwLock<BTreeMap<usize, Attachments>> = RwLock::new(BTreeMap::new());

/// Whether a crash handler that reports source lines is installed
/// ([`crash_reports_wanted`]).
static CRASH_REPORTS: AtomicBool = AtomicBool::new(false);

/// Readies crash reports to name source lines: validates the source map of every module
/// loaded so far, and has every later load validate its module's (the crash handler reads
/// maps only once validated, and cannot validate one itself). The crash handlers' installers
/// call it.
pub(crate) fn prepare_crash_reports() {
    CRASH_REPORTS.store(true, Ordering::SeqCst);
    let loaded = LOADED.read().unwrap_or_else(|p| p.into_inner());
    for attachments in loaded.values() {
        attachments.symbols.checked_source_map();
    }
}

/// Whether a crash handler will read loaded modules' source maps: a load then validates its
/// module's at once, and refuses a module whose map is broken.
pub(crate) fn crash_reports_wanted() -> bool {
    CRASH_REPORTS.load(Ordering::SeqCst)
}

/// Registers the image of `parsed` mapped at `base` (`len` bytes), named `name` in messages,
/// and describes it to debuggers if `debugger`. `source_map_checked`: the load validated the
/// module's source map.
///
/// # Safety
/// The image must be completely mapped, relocated and protected, and stay so until
/// [`detach`] is called with the same `base`.
pub(crate) unsafe fn attach(
    file: &Arc<ParsedFile>,
    base: usize,
    len: usize,
    name: &str,
    tls: Option<Box<TlsModule>>,
    debugger: bool,
    source_map_checked: bool,
) {
    let parsed = file.borrow_dependent();
    let symbols = ModuleSymbols::new(file, base, len, name);
    if source_map_checked {
        symbols.source_map_was_checked();
    }
    // SAFETY: the image is mapped, relocated and protected until `detach` (caller's contract).
    let unwind = unsafe { UnwindRegistration::register_module(parsed, base) };
    let jit = if debugger {
        // SAFETY: the image stays mapped and protected until `detach` (caller's contract).
        unsafe { describe_to_debuggers(parsed, base, &symbols) }
    } else {
        None
    };
    crate::perfmap::record(&symbols);
    if let Some(tls) = &tls {
        tls.attach(base..base + len);
    }
    // SAFETY: the image is complete, its function table registered, and it stays mapped
    // until `detach` (caller's contract), which drops the registration.
    let tls_callbacks = unsafe { TlsCallbacks::attach(parsed, base) };
    let attachments = Attachments {
        _tls_callbacks: tls_callbacks,
        symbols,
        _unwind: unwind,
        _jit: jit,
        _tls: tls,
    };
    let mut loaded = LOADED.write().unwrap_or_else(|p| p.into_inner());
    // A crash handler installed since the load looked (under this lock, so
    // `prepare_crash_reports` either sees this module or was seen by the load).
    if crash_reports_wanted() {
        attachments.symbols.checked_source_map();
    }
    loaded.insert(base, attachments);
}

/// The module's entry in the GDB JIT interface.
///
/// # Safety
/// The image of `parsed` must be mapped at `base`, its `.eh_frame` sections read-only, for the
/// duration of the call.
unsafe fn describe_to_debuggers(
    parsed: &smf_format::Module<'_>,
    base: usize,
    symbols: &ModuleSymbols,
) -> Option<JitRegistration> {
    // The unwind tables, at their run-time addresses, let debuggers walk module frames. They
    // are read from the image: a module parsed from its file's head has no payload bytes.
    let eh_frames: Vec<(usize, &[u8])> = parsed
        .loaded_sections()
        .filter(|s| s.kind == SectionKind::EhFrame)
        .map(|s| {
            let address = base + s.vaddr as usize;
            // SAFETY: an eh_frame section is read-only in the image for the duration of the
            // call (this function's contract), and the reader checked its `file_size`
            // bytes lie inside the image; the slice is dropped before this returns.
            let bytes =
                unsafe { std::slice::from_raw_parts(address as *const u8, s.file_size as usize) };
            (address, bytes)
        })
        .collect();
    JitRegistration::new(symbols, &eh_frames)
}

/// Undoes [`attach`] for the image at `base`, if it was attached.
pub(crate) fn detach(base: usize) {
    let removed = LOADED
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&base);
    if let Some(attachments) = &removed {
        // The module's fork and quick-exit handlers, before its code is unmapped.
        crate::sys::exit_handlers::forget(base..base + attachments.symbols.len);
    }
    // Deregistration takes the unwinder's and the debugger interface's locks: not under ours.
    drop(removed);
}

/// The address of the loader's own definition of the import `import`, for the functions
/// whose C library version does not do for module code: `__tls_get_addr` for a module with
/// thread-locals (`tls`), which the C library cannot give a block; the registrations of
/// fork and quick-exit handlers, which it cannot take back when the module is unloaded
/// (`sys::exit_handlers`); and `__cxa_atexit`, whose handles the loader notes. These are
/// resolved before any resolver is asked.
pub(crate) fn provided(import: &Import<'_>, tls: Option<&TlsModule>) -> Option<usize> {
    match import.name {
        crate::tls::TLS_GET_ADDR => tls.map(|_| crate::tls::tls_get_addr_address()),
        "__cxa_atexit" => Some(cxa_atexit as *const () as usize),
        #[cfg(windows)]
        "atexit" => Some(module_atexit as *const () as usize),
        #[cfg(windows)]
        "_onexit" => Some(module_onexit as *const () as usize),
        name => crate::sys::exit_handlers::provided(name),
    }
}

/// The handles module code passed to `__cxa_atexit`: the identities the C library ties those
/// exit handlers to, each normally the `__dso_handle` of a module.
static EXIT_HANDLES: Mutex<BTreeSet<usize>> = Mutex::new(BTreeSet::new());

/// The `__cxa_atexit` modules get: notes `dso`, then registers with the C library.
extern "C" fn cxa_atexit(
    function: Option<unsafe extern "C" fn(*mut c_void)>,
    argument: *mut c_void,
    dso: *mut c_void,
) -> c_int {
    if !dso.is_null() {
        EXIT_HANDLES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(dso as usize);
    }
    // SAFETY: the module's own arguments, passed on as if it had called the C library.
    unsafe { crate::sys::cxa_atexit(function, argument, dso) }
}

/// The `atexit` modules get on Windows. There a module's C runtime calls (mingw-w64's C++
/// static destructors among them) reach msvcrt's `atexit`, whose handlers run only at process
/// exit: after an unloaded module's code is gone. A handler inside a module's image is kept
/// instead with that module's base as its handle, so unloading the module runs it, latest
/// first, as a DLL's C runtime runs its own `atexit` table when the DLL is unloaded. A handler
/// outside every module (a host function) goes to the C runtime's `atexit`.
#[cfg(windows)]
extern "C" fn module_atexit(handler: Option<extern "C" fn()>) -> c_int {
    let Some(handler) = handler else {
        return -1;
    };
    let Some(base) = with_symbols(handler as usize, |symbols| symbols.base) else {
        crate::sys::at_exit(handler);
        return 0;
    };
    // `call_plain` gets the handler, an `extern "C" fn()`, back as its argument.
    cxa_atexit(
        Some(crate::sys::call_plain),
        handler as *mut c_void,
        base as *mut c_void,
    )
}

/// The `_onexit` modules get on Windows: [`module_atexit`], returning the handler on success
/// and null on failure, as msvcrt's does.
#[cfg(windows)]
extern "C" fn module_onexit(handler: Option<extern "C" fn()>) -> Option<extern "C" fn()> {
    (module_atexit(handler) == 0).then_some(handler).flatten()
}

/// Takes the handles inside `image` that module code registered exit handlers with: those
/// `__cxa_finalize` must run before that image is unmapped. The handle may have reached
/// `__cxa_atexit` through another module (a runtime registering for its caller), so the
/// image is what counts, not which module made the call.
pub(crate) fn exit_handles(image: Range<usize>) -> Vec<usize> {
    let mut handles = EXIT_HANDLES.lock().unwrap_or_else(|p| p.into_inner());
    let found: Vec<usize> = handles.range(image).copied().collect();
    for handle in &found {
        handles.remove(handle);
    }
    found
}

/// Calls `f` with the symbols of the module whose image contains `address`.
pub(crate) fn with_symbols<R>(address: usize, f: impl FnOnce(&ModuleSymbols) -> R) -> Option<R> {
    let loaded = LOADED.read().unwrap_or_else(|p| p.into_inner());
    lookup(&loaded, address).map(f)
}

/// The name of the module whose image contains `address`, for messages.
pub(crate) fn module_name(address: usize) -> Option<String> {
    with_symbols(address, |symbols| symbols.module.clone())
}

/// As [`with_symbols`], but gives up instead of waiting for the lock, and allocates nothing:
/// for signal handlers.
pub(crate) fn try_with_symbols<R>(
    address: usize,
    f: impl FnOnce(&ModuleSymbols) -> R,
) -> Option<R> {
    let loaded = LOADED.try_read().ok()?;
    lookup(&loaded, address).map(f)
}

fn lookup(loaded: &BTreeMap<usize, Attachments>, address: usize) -> Option<&ModuleSymbols> {
    let (_, attachments) = loaded.range(..=address).next_back()?;
    let symbols = &attachments.symbols;
    (address - symbols.base < symbols.len).then_some(symbols)
}
