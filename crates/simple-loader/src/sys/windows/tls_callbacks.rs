//! The TLS callbacks of Windows modules (`docs/FORMAT.md`, *TLS callbacks of Windows
//! modules*), called as Windows calls those of a DLL: `DLL_PROCESS_ATTACH` before the
//! constructors, `DLL_THREAD_ATTACH` and `DLL_THREAD_DETACH` on each thread that starts or
//! ends while the module is loaded, `DLL_PROCESS_DETACH` after the destructors.
//!
//! Windows tells a PE image of threads through the TLS callbacks of its TLS directory; a
//! module is no PE image, so the loader's own image (the program or DLL the loader is linked
//! into) has one callback, [`LOADER_CALLBACK`] in `.CRT$XLM`, which passes each thread's
//! start and end on to the callbacks of every registered module. Windows calls it under its
//! loader lock, as it calls a DLL's; here the modules' callbacks also run under the lock of
//! [`MODULES`], so a module's callbacks never run once it is unregistered, and a callback
//! must not load or unload a module (as `DllMain` must not).
//!
//! At process exit a module still loaded gets `DLL_PROCESS_DETACH` when the loader's image
//! does: Windows calls a program's TLS callbacks then; Wine 8 calls only a DLL's, as a native
//! program's own callbacks are not called there either.

use std::ffi::c_void;
use std::sync::Mutex;

/// A PE TLS callback (`PIMAGE_TLS_CALLBACK`).
type Callback = unsafe extern "system" fn(*mut c_void, u32, *mut c_void);

const DLL_PROCESS_DETACH: u32 = 0;
const DLL_PROCESS_ATTACH: u32 = 1;
const DLL_THREAD_ATTACH: u32 = 2;
const DLL_THREAD_DETACH: u32 = 3;

/// One module's callbacks, in the order they run, and its image base (their first argument).
struct Module {
    base: usize,
    callbacks: Vec<Callback>,
}

/// The registered modules, in load order.
static MODULES: Mutex<Vec<Module>> = Mutex::new(Vec::new());

/// The loader image's TLS callback. mingw-w64's start-up code (`tlssup.c`) gives every
/// program and DLL a TLS directory whose callback list is the `.CRT$XL*` sections, sorted
/// by name; `#[used]` keeps the entry, and [`TlsCallbacks::attach`] reads it so that the
/// object holding it is linked.
#[used]
// SAFETY: `.CRT$XL*` holds only pointers to `extern "system" fn(*mut c_void, u32, *mut
// c_void)` TLS callbacks, which Windows calls; `Callback` is that type, and the section
// (between mingw-w64's `.CRT$XLA` and `.CRT$XLZ` markers) holds nothing else of ours.
#[unsafe(link_section = ".CRT$XLM")]
static LOADER_CALLBACK: Callback = loader_callback;

/// Passes thread attach and detach, and process detach, on to the registered modules.
///
/// # Safety
/// Called by Windows only, as a TLS callback.
unsafe extern "system" fn loader_callback(_image: *mut c_void, reason: u32, reserved: *mut c_void) {
    match reason {
        DLL_THREAD_ATTACH | DLL_THREAD_DETACH => {
            let modules = MODULES.lock().unwrap_or_else(|p| p.into_inner());
            for module in modules.iter() {
                // SAFETY: registered modules stay mapped until `TlsCallbacks` is dropped,
                // which removes them under this lock first.
                unsafe { module.call(reason, std::ptr::null_mut()) };
            }
        }
        DLL_PROCESS_DETACH => {
            // Latest first, as Windows detaches DLLs; each once.
            let modules = std::mem::take(&mut *MODULES.lock().unwrap_or_else(|p| p.into_inner()));
            for module in modules.iter().rev() {
                // SAFETY: the process is ending; nothing unmaps modules any more. `reserved`
                // says whether it ends by `ExitProcess`, as Windows passes it to a DLL.
                unsafe { module.call(DLL_PROCESS_DETACH, reserved) };
            }
        }
        _ => {}
    }
}

impl Module {
    /// Calls every callback with `reason`.
    ///
    /// # Safety
    /// The module's image must be mapped.
    unsafe fn call(&self, reason: u32, reserved: *mut c_void) {
        for callback in &self.callbacks {
            // SAFETY: the reader checked each callback lies in a code section of the image,
            // which is mapped (caller's contract); it is called as Windows calls it.
            unsafe { callback(self.base as *mut c_void, reason, reserved) };
        }
    }
}

/// The registration of one module's TLS callbacks; dropping it unregisters them and calls
/// them with `DLL_PROCESS_DETACH`.
#[derive(Debug)]
pub(crate) struct TlsCallbacks {
    base: usize,
}

impl TlsCallbacks {
    /// Calls the TLS callbacks of `parsed`, mapped at `base`, with `DLL_PROCESS_ATTACH`, then
    /// registers them for thread events. `None` if the module has none.
    ///
    /// # Safety
    /// The image must be complete (relocated, protected, its function table registered) and
    /// stay mapped until the result is dropped.
    pub(crate) unsafe fn attach(
        parsed: &smf_format::Module<'_>,
        base: usize,
    ) -> Option<TlsCallbacks> {
        if parsed.tls_callbacks().is_empty() {
            return None;
        }
        // SAFETY: reading a static; volatile, so that the read (and the object holding the
        // callback entry) stays in the build.
        let _ = unsafe { std::ptr::read_volatile(&LOADER_CALLBACK) };
        let callbacks = parsed
            .tls_callbacks()
            .iter()
            .map(|&offset| {
                // SAFETY: the reader checked the offset lies in a code section of this image,
                // which is mapped read+execute (caller's contract).
                unsafe { std::mem::transmute::<usize, Callback>(base + offset as usize) }
            })
            .collect();
        let module = Module { base, callbacks };
        // SAFETY: the image is complete and mapped (caller's contract).
        unsafe { module.call(DLL_PROCESS_ATTACH, std::ptr::null_mut()) };
        MODULES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(module);
        Some(TlsCallbacks { base })
    }
}

impl Drop for TlsCallbacks {
    fn drop(&mut self) {
        let removed = {
            let mut modules = MODULES.lock().unwrap_or_else(|p| p.into_inner());
            let index = modules.iter().position(|m| m.base == self.base);
            index.map(|i| modules.remove(i))
        };
        if let Some(module) = removed {
            // SAFETY: the image is still mapped (`attach`'s contract), and no thread event
            // reaches it any more. A null `reserved` says the module is unloaded, not that
            // the process ends.
            unsafe { module.call(DLL_PROCESS_DETACH, std::ptr::null_mut()) };
        }
    }
}
