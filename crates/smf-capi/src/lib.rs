//! The C API of `simple-loader`: `libsmf.so` and `libsmf.a`, declared by `include/smf.h`.
//!
//! The conventions are those of `dlopen`: functions return `NULL` or `-1` on failure and
//! leave a message for [`smf_error`] on the calling thread. Every function may be called
//! from any thread; no Rust panic crosses into C (it becomes an error). The header says,
//! per function, who owns what and what the caller promises; this file keeps the promises
//! the header makes for the library.
//!
//! Handles are boxes handed to C as raw pointers: `smf_registry` owns a [`Registry`] and
//! the [`Current`] handles behind the addresses `smf_current` returned, `smf_module` one
//! reference to a [`Module`], `smf_report` a [`ReloadReport`] with its names as C strings.
#![deny(unsafe_op_in_unsafe_fn)]
// The C names are the API.
#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use simple_loader::smf_format::Limits;
use simple_loader::{
    Current, LoadError, LoadOptions, Module, PinGuard, PublicKey, Registry, ReloadReport,
    SignaturePolicy,
};

/// A registry of loaded modules (`smf_registry` in C).
pub struct smf_registry {
    registry: Registry,
    /// The handles behind the addresses `smf_current` returned: each keeps its trampoline
    /// mapped until the registry is freed.
    currents: Mutex<Currents>,
}

#[derive(Default)]
struct Currents {
    /// By canonical path and name, for the modules loaded now.
    live: HashMap<(PathBuf, String), Current<unsafe extern "C" fn()>>,
    /// Those of modules since unloaded: a later load of the same path gets new slots, and
    /// these stay callable (reaching the last version) as `smf.h` promises.
    unloaded: Vec<Current<unsafe extern "C" fn()>>,
}

/// One reference to a loaded module (`smf_module` in C).
pub struct smf_module {
    module: Arc<Module>,
    name: CString,
}

/// Settings for the loads of a registry (`smf_options` in C).
#[derive(Default)]
pub struct smf_options {
    options: LoadOptions,
    limits: Limits,
    keys: Vec<PublicKey>,
}

/// What one reload did (`smf_report` in C).
pub struct smf_report {
    report: ReloadReport,
    /// The names of each list, by `SMF_REPORT_*` index.
    lists: [Vec<CString>; 5],
    reasons: Vec<CString>,
    text: CString,
}

/// A pinned thread (`smf_pin_guard` in C).
pub struct smf_pin_guard {
    _guard: PinGuard,
    thread: ThreadId,
}

pub const SMF_LIMIT_IMAGE_SIZE: c_int = 0;
pub const SMF_LIMIT_SECTIONS: c_int = 1;
pub const SMF_LIMIT_SYMBOLS: c_int = 2;
pub const SMF_LIMIT_IMPORTS: c_int = 3;
pub const SMF_LIMIT_RELOCATIONS: c_int = 4;
pub const SMF_LIMIT_NAME_LEN: c_int = 5;

pub const SMF_REPORT_ADDED: c_int = 0;
pub const SMF_REPORT_REMOVED: c_int = 1;
pub const SMF_REPORT_CHANGED: c_int = 2;
pub const SMF_REPORT_KEPT: c_int = 3;
pub const SMF_REPORT_RESET: c_int = 4;

thread_local! {
    /// This thread's last error, and the one `smf_error` last returned (kept alive until
    /// the next `smf_error` call, as `dlerror` does).
    static ERROR: RefCell<(Option<CString>, Option<CString>)> = const { RefCell::new((None, None)) };
}

fn set_error(message: String) {
    // A message cannot hold NUL bytes as a C string: cut at the first one.
    let bytes: Vec<u8> = message
        .into_bytes()
        .into_iter()
        .take_while(|&b| b != 0)
        .collect();
    let message = CString::new(bytes).unwrap_or_default();
    // `try_with` fails only while the thread's locals are destroyed: the message is lost.
    let _ = ERROR.try_with(|error| error.borrow_mut().0 = Some(message));
}

/// Runs `body`, turning an `Err` or a panic into this thread's error and `fallback`.
fn call<T>(fallback: T, body: impl FnOnce() -> Result<T, String>) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(message)) => {
            set_error(message);
            fallback
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_error(format!("internal error in libsmf: {what}"));
            fallback
        }
    }
}

fn load_error(error: LoadError) -> String {
    format!("{error:#}")
}

/// The string at `ptr`, or an error naming the function and the argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid for `'a`.
unsafe fn c_str<'a>(
    ptr: *const c_char,
    function: &str,
    argument: &str,
) -> Result<&'a CStr, String> {
    if ptr.is_null() {
        return Err(format!("{function}: {argument} is NULL"));
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string.
    Ok(unsafe { CStr::from_ptr(ptr) })
}

/// A path as the C API takes it: bytes as Unix takes them; UTF-8 on Windows, whose paths
/// are UTF-16 (`smf.h`).
///
/// # Safety
/// As for [`c_str`].
unsafe fn c_path<'a>(ptr: *const c_char, function: &str) -> Result<&'a Path, String> {
    // SAFETY: the caller's contract.
    let bytes = unsafe { c_str(ptr, function, "path") }?.to_bytes();
    path_of(bytes, function)
}

#[cfg(unix)]
fn path_of<'a>(bytes: &'a [u8], _function: &str) -> Result<&'a Path, String> {
    use std::os::unix::ffi::OsStrExt as _;
    Ok(Path::new(std::ffi::OsStr::from_bytes(bytes)))
}

#[cfg(not(unix))]
fn path_of<'a>(bytes: &'a [u8], function: &str) -> Result<&'a Path, String> {
    std::str::from_utf8(bytes)
        .map(Path::new)
        .map_err(|e| format!("{function}: path is not UTF-8 ({e})"))
}

/// # Safety
/// As for [`c_str`].
unsafe fn c_name<'a>(ptr: *const c_char, function: &str) -> Result<&'a str, String> {
    // SAFETY: the caller's contract.
    let name = unsafe { c_str(ptr, function, "name") }?;
    name.to_str()
        .map_err(|_| format!("{function}: name {name:?} is not UTF-8"))
}

/// The object behind a handle, or an error naming the function.
///
/// # Safety
/// `ptr` is NULL or a live handle of type `T` made by this library, shared for `'a`.
unsafe fn handle<'a, T>(ptr: *const T, function: &str, what: &str) -> Result<&'a T, String> {
    // SAFETY: the caller's contract.
    unsafe { ptr.as_ref() }.ok_or_else(|| format!("{function}: {what} is NULL"))
}

/// # Safety
/// As for [`handle`], with exclusive access.
unsafe fn handle_mut<'a, T>(ptr: *mut T, function: &str, what: &str) -> Result<&'a mut T, String> {
    // SAFETY: the caller's contract.
    unsafe { ptr.as_mut() }.ok_or_else(|| format!("{function}: {what} is NULL"))
}

fn new_registry(registry: Registry) -> *mut smf_registry {
    Box::into_raw(Box::new(smf_registry {
        registry,
        currents: Mutex::new(Currents::default()),
    }))
}

fn new_module(module: Arc<Module>) -> *mut smf_module {
    let name = CString::new(module.name().replace('\0', "?")).unwrap_or_default();
    Box::into_raw(Box::new(smf_module { module, name }))
}

/// Returns this thread's last error and clears it; NULL if there was none since the last
/// call. See `smf.h`.
#[unsafe(no_mangle)]
pub extern "C" fn smf_error() -> *const c_char {
    let result = catch_unwind(|| {
        ERROR
            .try_with(|error| {
                let mut error = error.borrow_mut();
                let last = error.0.take();
                error.1 = last;
                error
                    .1
                    .as_ref()
                    .map_or(ptr::null(), |message| message.as_ptr())
            })
            .unwrap_or(ptr::null())
    });
    result.unwrap_or(ptr::null())
}

#[unsafe(no_mangle)]
pub extern "C" fn smf_options_new() -> *mut smf_options {
    call(ptr::null_mut(), || Ok(Box::into_raw(Box::default())))
}

/// # Safety
/// `options` is NULL or from `smf_options_new`, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_options_free(options: *mut smf_options) {
    call((), || {
        if !options.is_null() {
            // SAFETY: made by `smf_options_new` and given back once (the caller's contract).
            drop(unsafe { Box::from_raw(options) });
        }
        Ok(())
    })
}

/// # Safety
/// `options` is NULL or live, and no other thread uses it during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_options_set_verify_hash(
    options: *mut smf_options,
    verify: c_int,
) -> c_int {
    call(-1, || {
        // SAFETY: the caller's contract.
        let o = unsafe { handle_mut(options, "smf_options_set_verify_hash", "options") }?;
        o.options = std::mem::take(&mut o.options).with_verify_hash(verify != 0);
        Ok(0)
    })
}

/// # Safety
/// As for [`smf_options_set_verify_hash`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_options_set_type_changes(
    options: *mut smf_options,
    policy: c_int,
) -> c_int {
    call(-1, || {
        // SAFETY: the caller's contract.
        let o = unsafe { handle_mut(options, "smf_options_set_type_changes", "options") }?;
        let policy = match policy {
            0 => simple_loader::TypeChanges::Refuse,
            1 => simple_loader::TypeChanges::Report,
            other => {
                return Err(format!(
                    "smf_options_set_type_changes: unknown policy {other} (0 refuse, 1 report)"
                ));
            }
        };
        o.options = std::mem::take(&mut o.options).with_type_changes(policy);
        Ok(0)
    })
}

/// # Safety
/// As for [`smf_options_set_verify_hash`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_options_set_map_file(options: *mut smf_options, map: c_int) -> c_int {
    call(-1, || {
        // SAFETY: the caller's contract.
        let o = unsafe { handle_mut(options, "smf_options_set_map_file", "options") }?;
        o.options = std::mem::take(&mut o.options).with_map_file(map != 0);
        Ok(0)
    })
}

/// # Safety
/// As for [`smf_options_set_verify_hash`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_options_set_debugger(
    options: *mut smf_options,
    describe: c_int,
) -> c_int {
    call(-1, || {
        // SAFETY: the caller's contract.
        let o = unsafe { handle_mut(options, "smf_options_set_debugger", "options") }?;
        o.options = std::mem::take(&mut o.options).with_debugger(describe != 0);
        Ok(0)
    })
}

/// # Safety
/// As for [`smf_options_set_verify_hash`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_options_set_limit(
    options: *mut smf_options,
    limit: c_int,
    value: u64,
) -> c_int {
    call(-1, || {
        const F: &str = "smf_options_set_limit";
        // SAFETY: the caller's contract.
        let o = unsafe { handle_mut(options, F, "options") }?;
        let small = |value: u64| {
            u32::try_from(value).map_err(|_| format!("{F}: limit {limit}: {value} exceeds 2^32-1"))
        };
        match limit {
            SMF_LIMIT_IMAGE_SIZE => o.limits.max_image_size = value,
            SMF_LIMIT_SECTIONS => o.limits.max_sections = small(value)?,
            SMF_LIMIT_SYMBOLS => o.limits.max_symbols = value,
            SMF_LIMIT_IMPORTS => o.limits.max_imports = value,
            SMF_LIMIT_RELOCATIONS => o.limits.max_relocations = value,
            SMF_LIMIT_NAME_LEN => o.limits.max_name_len = small(value)?,
            _ => return Err(format!("{F}: unknown limit {limit}")),
        }
        Ok(0)
    })
}

/// # Safety
/// As for [`smf_options_set_verify_hash`]; `key_file` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_options_require_signature(
    options: *mut smf_options,
    key_file: *const c_char,
) -> c_int {
    call(-1, || {
        const F: &str = "smf_options_require_signature";
        // SAFETY: the caller's contract.
        let o = unsafe { handle_mut(options, F, "options") }?;
        // SAFETY: the caller's contract.
        let path = unsafe { c_path(key_file, F) }?;
        let keys = PublicKey::read_file(path)
            .map_err(|error| format!("{}: cannot read key file: {error}", path.display()))?;
        o.keys.extend(keys);
        Ok(0)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn smf_registry_new() -> *mut smf_registry {
    call(ptr::null_mut(), || Ok(new_registry(Registry::new())))
}

/// # Safety
/// `options` is NULL or live; no other thread changes it during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_registry_new_with_options(
    options: *const smf_options,
) -> *mut smf_registry {
    call(ptr::null_mut(), || {
        // SAFETY: the caller's contract.
        let o = unsafe { handle(options, "smf_registry_new_with_options", "options") }?;
        let mut load = o.options.clone().with_limits(o.limits);
        if !o.keys.is_empty() {
            load = load.with_signature(SignaturePolicy::Require(o.keys.clone()));
        }
        Ok(new_registry(Registry::with_options(load)))
    })
}

/// # Safety
/// `registry` is NULL or from `smf_registry_new*`, not used afterwards by any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_registry_free(registry: *mut smf_registry) {
    call((), || {
        if !registry.is_null() {
            // SAFETY: made by `new_registry` and given back once (the caller's contract).
            drop(unsafe { Box::from_raw(registry) });
        }
        Ok(())
    })
}

/// # Safety
/// `registry` is NULL or live; `name` NULL or a NUL-terminated string; `address` valid as
/// the object modules importing `name` expect while they are loaded.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_define(
    registry: *const smf_registry,
    name: *const c_char,
    address: *const c_void,
) -> c_int {
    call(-1, || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(registry, "smf_define", "registry") }?;
        // SAFETY: the caller's contract.
        let name = unsafe { c_name(name, "smf_define") }?;
        if address.is_null() {
            return Err(format!("smf_define: address of `{name}` is NULL"));
        }
        // SAFETY: the caller promises the address stays valid as modules expect.
        unsafe { r.registry.define(name, address as usize) };
        Ok(0)
    })
}

/// # Safety
/// `registry` is NULL or live; `path` NULL or a NUL-terminated string; the module's code
/// may run (see `smf.h`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_load(
    registry: *const smf_registry,
    path: *const c_char,
) -> *mut smf_module {
    call(ptr::null_mut(), || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(registry, "smf_load", "registry") }?;
        // SAFETY: the caller's contract.
        let path = unsafe { c_path(path, "smf_load") }?;
        // SAFETY: the caller vouches for the module file (smf.h, smf_load).
        let module = unsafe { r.registry.load(path) }.map_err(load_error)?;
        Ok(new_module(module))
    })
}

/// # Safety
/// `registry` is NULL or live; `path` NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_get(
    registry: *const smf_registry,
    path: *const c_char,
) -> *mut smf_module {
    call(ptr::null_mut(), || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(registry, "smf_get", "registry") }?;
        // SAFETY: the caller's contract.
        let path = unsafe { c_path(path, "smf_get") }?;
        match r.registry.get(path) {
            Some(module) => Ok(new_module(module)),
            None => Err(format!("{}: not loaded", path.display())),
        }
    })
}

/// # Safety
/// `module` is NULL or live; `name` NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_sym(module: *const smf_module, name: *const c_char) -> *mut c_void {
    call(ptr::null_mut(), || {
        // SAFETY: the caller's contract.
        let m = unsafe { handle(module, "smf_sym", "module") }?;
        // SAFETY: the caller's contract.
        let name = unsafe { c_name(name, "smf_sym") }?;
        match m.module.export(name) {
            Some((_, address)) => Ok(address as *mut c_void),
            None => Err(load_error(LoadError::SymbolNotFound {
                module: m.module.name().to_owned(),
                name: name.to_owned(),
            })),
        }
    })
}

/// # Safety
/// `registry` is NULL or live; `path` and `name` NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_current(
    registry: *const smf_registry,
    path: *const c_char,
    name: *const c_char,
) -> *mut c_void {
    call(ptr::null_mut(), || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(registry, "smf_current", "registry") }?;
        // SAFETY: the caller's contract.
        let path = unsafe { c_path(path, "smf_current") }?;
        // SAFETY: the caller's contract.
        let name = unsafe { c_name(name, "smf_current") }?;
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let mut currents = r.currents.lock().unwrap_or_else(|p| p.into_inner());
        let key = (canonical, name.to_owned());
        if let Some(current) = currents.live.get(&key) {
            return Ok(current.address() as *mut c_void);
        }
        // SAFETY: the handle is never called from Rust, only its address is handed out;
        // the C caller calls it with the type it knows (smf.h, smf_current).
        let current = unsafe { r.registry.current::<unsafe extern "C" fn()>(path, name) }
            .map_err(load_error)?;
        let address = current.address();
        currents.live.insert(key, current);
        Ok(address as *mut c_void)
    })
}

/// The type `text` names (`smf.h`, `smf_sym_typed`), or an error naming `function`.
fn expected_type(
    text: &CStr,
    function: &str,
) -> Result<simple_loader::smf_format::typeinfo::OwnedType, String> {
    let text = text
        .to_str()
        .map_err(|_| format!("{function}: type {text:?} is not UTF-8"))?;
    let mut builder = simple_loader::smf_format::typeinfo::TypeTableBuilder::new();
    let id = simple_loader::smf_format::typeinfo::parse_type(&mut builder, text)
        .map_err(|e| format!("{function}: {e}"))?;
    Ok(simple_loader::smf_format::typeinfo::OwnedType::from_builder(&builder, id))
}

/// # Safety
/// `module` is NULL or live; `name` and `type_text` NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_sym_typed(
    module: *const smf_module,
    name: *const c_char,
    type_text: *const c_char,
) -> *mut c_void {
    call(ptr::null_mut(), || {
        // SAFETY: the caller's contract.
        let m = unsafe { handle(module, "smf_sym_typed", "module") }?;
        // SAFETY: the caller's contract.
        let name = unsafe { c_name(name, "smf_sym_typed") }?;
        // SAFETY: the caller's contract.
        let text = unsafe { c_str(type_text, "smf_sym_typed", "type") }?;
        let expected = expected_type(text, "smf_sym_typed")?;
        let (_, address) = m.module.export(name).ok_or_else(|| {
            load_error(LoadError::SymbolNotFound {
                module: m.module.name().to_owned(),
                name: name.to_owned(),
            })
        })?;
        m.module.check_type(name, &expected).map_err(load_error)?;
        Ok(address as *mut c_void)
    })
}

/// # Safety
/// `module` is NULL or live; `name` NULL or a NUL-terminated string; `buffer` NULL or
/// writable for `size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_type_of(
    module: *const smf_module,
    name: *const c_char,
    buffer: *mut c_char,
    size: usize,
) -> std::ffi::c_long {
    call(-1, || {
        // SAFETY: the caller's contract.
        let m = unsafe { handle(module, "smf_type_of", "module") }?;
        // SAFETY: the caller's contract.
        let name = unsafe { c_name(name, "smf_type_of") }?;
        if m.module.export(name).is_none() {
            return Err(load_error(LoadError::SymbolNotFound {
                module: m.module.name().to_owned(),
                name: name.to_owned(),
            }));
        }
        let Some(ty) = m.module.type_of(name) else {
            return Ok(0);
        };
        let text = ty.to_string();
        if !buffer.is_null() && size > 0 {
            let n = text.len().min(size - 1);
            // SAFETY: `buffer` is writable for `size` bytes (the caller's contract) and
            // `n + 1 <= size`; `text` is a separate Rust string.
            unsafe {
                ptr::copy_nonoverlapping(text.as_ptr(), buffer.cast::<u8>(), n);
                *buffer.add(n) = 0;
            }
        }
        std::ffi::c_long::try_from(text.len()).map_err(|_| "smf_type_of: type text too long".into())
    })
}

/// # Safety
/// `registry` is NULL or live; `path`, `name` and `type_text` NULL or NUL-terminated
/// strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_current_typed(
    registry: *const smf_registry,
    path: *const c_char,
    name: *const c_char,
    type_text: *const c_char,
) -> *mut c_void {
    call(ptr::null_mut(), || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(registry, "smf_current_typed", "registry") }?;
        // SAFETY: the caller's contract.
        let path_ = unsafe { c_path(path, "smf_current_typed") }?;
        // SAFETY: the caller's contract.
        let name_ = unsafe { c_name(name, "smf_current_typed") }?;
        // SAFETY: the caller's contract.
        let text = unsafe { c_str(type_text, "smf_current_typed", "type") }?;
        let expected = expected_type(text, "smf_current_typed")?;
        let module = r
            .registry
            .get(path_)
            .ok_or_else(|| format!("{}: not loaded", path_.display()))?;
        module.check_type(name_, &expected).map_err(load_error)?;
        // SAFETY: the caller's contract covers smf_current's; on NULL it set the error.
        Ok(unsafe { smf_current(registry, path, name) })
    })
}

/// # Safety
/// `registry` is NULL or live; `name` NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_resolve(
    registry: *const smf_registry,
    name: *const c_char,
) -> *mut c_void {
    call(ptr::null_mut(), || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(registry, "smf_resolve", "registry") }?;
        // SAFETY: the caller's contract.
        let name = unsafe { c_name(name, "smf_resolve") }?;
        r.registry
            .resolve(name)
            .map(|address| address as *mut c_void)
            .ok_or_else(|| format!("`{name}` is defined by no module or host definition"))
    })
}

/// # Safety
/// As for [`smf_reload_with_report`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_reload(registry: *const smf_registry, path: *const c_char) -> c_int {
    call(-1, || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(registry, "smf_reload", "registry") }?;
        // SAFETY: the caller's contract.
        let path = unsafe { c_path(path, "smf_reload") }?;
        // SAFETY: the caller vouches for the new version (smf.h, smf_reload).
        unsafe { r.registry.reload(path) }.map_err(load_error)?;
        Ok(0)
    })
}

/// # Safety
/// `registry` is NULL or live; `path` NULL or a NUL-terminated string; the new version's
/// code may run (see `smf.h`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_reload_with_report(
    registry: *const smf_registry,
    path: *const c_char,
) -> *mut smf_report {
    call(ptr::null_mut(), || {
        const F: &str = "smf_reload_with_report";
        // SAFETY: the caller's contract.
        let r = unsafe { handle(registry, F, "registry") }?;
        // SAFETY: the caller's contract.
        let path = unsafe { c_path(path, F) }?;
        // SAFETY: the caller vouches for the new version (smf.h, smf_reload).
        let report = unsafe { r.registry.reload(path) }.map_err(load_error)?;
        let strings = |names: &mut dyn Iterator<Item = &String>| -> Vec<CString> {
            names
                .map(|name| CString::new(name.replace('\0', "?")).unwrap_or_default())
                .collect()
        };
        let lists = [
            strings(&mut report.added.iter()),
            strings(&mut report.removed.iter()),
            strings(&mut report.changed.iter()),
            strings(&mut report.kept.iter()),
            strings(&mut report.reset.iter().map(|(name, _)| name)),
        ];
        let reasons = strings(&mut report.reset.iter().map(|(_, why)| why));
        let text = CString::new(report.to_string().replace('\0', "?")).unwrap_or_default();
        Ok(Box::into_raw(Box::new(smf_report {
            report,
            lists,
            reasons,
            text,
        })))
    })
}

/// # Safety
/// `report` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_report_version(report: *const smf_report) -> u32 {
    call(0, || {
        // SAFETY: the caller's contract.
        Ok(unsafe { handle(report, "smf_report_version", "report") }?
            .report
            .version)
    })
}

/// # Safety
/// `report` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_report_unchanged(report: *const smf_report) -> c_int {
    call(-1, || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(report, "smf_report_unchanged", "report") }?;
        Ok(c_int::from(r.report.unchanged))
    })
}

/// # Safety
/// `report` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_report_count(report: *const smf_report, list: c_int) -> usize {
    call(0, || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(report, "smf_report_count", "report") }?;
        let list = usize::try_from(list)
            .ok()
            .and_then(|list| r.lists.get(list))
            .ok_or_else(|| format!("smf_report_count: unknown list {list}"))?;
        Ok(list.len())
    })
}

/// # Safety
/// `report` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_report_name(
    report: *const smf_report,
    list: c_int,
    index: usize,
) -> *const c_char {
    call(ptr::null(), || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(report, "smf_report_name", "report") }?;
        let names = usize::try_from(list)
            .ok()
            .and_then(|list| r.lists.get(list))
            .ok_or_else(|| format!("smf_report_name: unknown list {list}"))?;
        names.get(index).map(|name| name.as_ptr()).ok_or_else(|| {
            format!(
                "smf_report_name: index {index} past the end of list {list} ({} names)",
                names.len()
            )
        })
    })
}

/// # Safety
/// `report` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_report_reset_reason(
    report: *const smf_report,
    index: usize,
) -> *const c_char {
    call(ptr::null(), || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(report, "smf_report_reset_reason", "report") }?;
        r.reasons.get(index).map(|why| why.as_ptr()).ok_or_else(|| {
            format!(
                "smf_report_reset_reason: index {index} past the end of the reset list ({} names)",
                r.reasons.len()
            )
        })
    })
}

/// # Safety
/// `report` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_report_text(report: *const smf_report) -> *const c_char {
    call(ptr::null(), || {
        // SAFETY: the caller's contract.
        Ok(unsafe { handle(report, "smf_report_text", "report") }?
            .text
            .as_ptr())
    })
}

/// # Safety
/// `report` is NULL or from `smf_reload_with_report`, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_report_module(report: *const smf_report) -> *mut smf_module {
    call(ptr::null_mut(), || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(report, "smf_report_module", "report") }?;
        Ok(new_module(Arc::clone(&r.report.module)))
    })
}

/// # Safety
/// `report` is NULL or from `smf_reload_with_report`, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_report_free(report: *mut smf_report) {
    call((), || {
        if !report.is_null() {
            // SAFETY: made by `smf_reload_with_report` and given back once.
            drop(unsafe { Box::from_raw(report) });
        }
        Ok(())
    })
}

/// # Safety
/// `registry` is NULL or live; `path` NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_unload(registry: *const smf_registry, path: *const c_char) -> c_int {
    call(-1, || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(registry, "smf_unload", "registry") }?;
        // SAFETY: the caller's contract.
        let path = unsafe { c_path(path, "smf_unload") }?;
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        // Under the handles' lock, so that no `smf_current` call hands out a slot of the
        // module being removed and keeps it as live.
        let mut currents = r.currents.lock().unwrap_or_else(|p| p.into_inner());
        let removed = r.registry.unload(path).map_err(load_error)?;
        let gone: Vec<_> = currents
            .live
            .keys()
            .filter(|(p, _)| *p == canonical)
            .cloned()
            .collect();
        for key in gone {
            if let Some(current) = currents.live.remove(&key) {
                currents.unloaded.push(current);
            }
        }
        Ok(c_int::from(removed))
    })
}

/// # Safety
/// `registry` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_pin(registry: *const smf_registry) -> *mut smf_pin_guard {
    call(ptr::null_mut(), || {
        // SAFETY: the caller's contract.
        let r = unsafe { handle(registry, "smf_pin", "registry") }?;
        Ok(Box::into_raw(Box::new(smf_pin_guard {
            _guard: r.registry.pin(),
            thread: std::thread::current().id(),
        })))
    })
}

/// # Safety
/// `pin` is NULL or from `smf_pin`, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_unpin(pin: *mut smf_pin_guard) -> c_int {
    call(-1, || {
        // SAFETY: the caller's contract.
        let p = unsafe { handle(pin, "smf_unpin", "pin") }?;
        if p.thread != std::thread::current().id() {
            return Err("smf_unpin: the pin belongs to another thread; unpin it there".into());
        }
        // SAFETY: made by `smf_pin` on this thread and given back once.
        drop(unsafe { Box::from_raw(pin) });
        Ok(0)
    })
}

/// # Safety
/// `registry` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_collect(registry: *const smf_registry) -> c_int {
    call(-1, || {
        // SAFETY: the caller's contract.
        unsafe { handle(registry, "smf_collect", "registry") }?
            .registry
            .collect();
        Ok(0)
    })
}

/// # Safety
/// `module` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_module_name(module: *const smf_module) -> *const c_char {
    call(ptr::null(), || {
        // SAFETY: the caller's contract.
        Ok(unsafe { handle(module, "smf_module_name", "module") }?
            .name
            .as_ptr())
    })
}

/// # Safety
/// `module` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_module_base(module: *const smf_module) -> *mut c_void {
    call(ptr::null_mut(), || {
        // SAFETY: the caller's contract.
        Ok(unsafe { handle(module, "smf_module_base", "module") }?
            .module
            .base() as *mut c_void)
    })
}

/// # Safety
/// `module` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_module_size(module: *const smf_module) -> usize {
    call(0, || {
        // SAFETY: the caller's contract.
        Ok(unsafe { handle(module, "smf_module_size", "module") }?
            .module
            .image_len())
    })
}

/// # Safety
/// `module` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_module_is_reloadable(module: *const smf_module) -> c_int {
    call(-1, || {
        // SAFETY: the caller's contract.
        let m = unsafe { handle(module, "smf_module_is_reloadable", "module") }?;
        Ok(c_int::from(m.module.is_reloadable()))
    })
}

/// # Safety
/// `module` is NULL or live; `hash` NULL or 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_module_hash(module: *const smf_module, hash: *mut u8) -> c_int {
    call(-1, || {
        // SAFETY: the caller's contract.
        let m = unsafe { handle(module, "smf_module_hash", "module") }?;
        if hash.is_null() {
            return Err("smf_module_hash: hash is NULL".into());
        }
        let value = m.module.module_hash();
        // SAFETY: the caller promises 32 writable bytes at `hash`.
        unsafe { ptr::copy_nonoverlapping(value.as_ptr(), hash, value.len()) };
        Ok(0)
    })
}

/// # Safety
/// `module` is NULL or from `smf_load`, `smf_get` or `smf_report_module`, not used
/// afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smf_module_release(module: *mut smf_module) {
    call((), || {
        if !module.is_null() {
            // SAFETY: made by `new_module` and given back once (the caller's contract).
            drop(unsafe { Box::from_raw(module) });
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_with_non_ascii_characters_reaches_the_loader_unchanged() {
        let path = CString::new("dir/modulé ü.smf").unwrap();
        // SAFETY: a NUL-terminated string alive for the call.
        let got = unsafe { c_path(path.as_ptr(), "smf_load") }.unwrap();
        assert_eq!(got, Path::new("dir/modulé ü.smf"));
    }

    #[test]
    fn a_path_that_is_not_utf8_is_taken_as_bytes_on_unix_and_refused_on_windows() {
        let path = CString::new(b"dir/\xff.smf".to_vec()).unwrap();
        // SAFETY: a NUL-terminated string alive for the call.
        let got = unsafe { c_path(path.as_ptr(), "smf_load") };
        if cfg!(unix) {
            assert_eq!(got.unwrap().as_os_str().as_encoded_bytes(), b"dir/\xff.smf");
        } else {
            let error = got.unwrap_err();
            assert!(error.starts_with("smf_load: path is not UTF-8"), "{error}");
        }
    }
}
