//! Exit handlers on Windows. The C runtime (msvcrt) has `atexit` but no `__cxa_atexit` or
//! `__cxa_finalize`: the loader keeps the handlers registered through `__cxa_atexit` itself,
//! by the handle they were registered with, so that unloading a module runs exactly its own
//! (`cxa_finalize`), and runs those left at process exit, latest first.

use std::ffi::{c_int, c_void};
use std::sync::{Mutex, Once};

/// A handler registered with [`cxa_atexit`].
struct Handler {
    function: unsafe extern "C" fn(*mut c_void),
    argument: *mut c_void,
    dso: *mut c_void,
}

// SAFETY: the pointers are module code's own values, passed back to it unread.
unsafe impl Send for Handler {}

/// Registered handlers, in registration order.
static HANDLERS: Mutex<Vec<Handler>> = Mutex::new(Vec::new());

unsafe extern "C" {
    /// msvcrt's `atexit`.
    #[link_name = "atexit"]
    fn c_atexit(handler: extern "C" fn()) -> c_int;
    /// msvcrt's `exit`.
    #[link_name = "exit"]
    fn c_exit(status: c_int) -> !;
}

/// Ends the process through the C runtime's `exit`: its `atexit` handlers run and its
/// stdio buffers are flushed, which `ExitProcess` (what `std::process::exit` calls) skips.
pub(crate) fn exit(status: i32) -> ! {
    // Rust's own buffered stdout is flushed first, as `std::process::exit` would not either.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    // SAFETY: exiting through the C runtime; nothing of Rust's is left to unwind.
    unsafe { c_exit(status) }
}

/// Registers `handler` to run when the process exits through `exit` (or by returning from
/// `main`). It joins the list of [`cxa_atexit`]'s handlers, with no handle, so that it runs
/// at exit in the one latest-first order of all of them (a module's destructors kept until
/// exit, say, after the `atexit` handlers its `main` registered later), as in a native
/// program's single C runtime list.
pub(crate) fn at_exit(handler: extern "C" fn()) {
    // SAFETY: `call_plain` is callable with the handler until exit: a plain function
    // pointer to loader or module code that stays mapped until then (a module's handlers
    // have its handle instead, and run when it is unloaded).
    unsafe {
        cxa_atexit(
            Some(call_plain),
            handler as *mut c_void,
            std::ptr::null_mut(),
        )
    };
}

/// Calls the `atexit`-style handler (`extern "C" fn()`) passed as the argument: the
/// function that registers such a handler with [`cxa_atexit`], whose handlers take one.
///
/// # Safety
/// `handler` must be an `extern "C" fn()` cast to a pointer.
pub(crate) unsafe extern "C" fn call_plain(handler: *mut c_void) {
    // SAFETY: an `extern "C" fn()` (the caller's contract); function and data pointers have
    // the same size and representation on Windows.
    let handler: extern "C" fn() = unsafe { std::mem::transmute(handler) };
    handler();
}

/// The `__cxa_atexit` of the Itanium C++ ABI: `function(argument)` runs when the module whose
/// handle is `dso` is finalized, or at process exit.
///
/// # Safety
/// `function` must be callable with `argument` until then.
pub(crate) unsafe fn cxa_atexit(
    function: Option<unsafe extern "C" fn(*mut c_void)>,
    argument: *mut c_void,
    dso: *mut c_void,
) -> c_int {
    static AT_EXIT: Once = Once::new();
    let Some(function) = function else {
        return -1;
    };
    // SAFETY: registering a plain `extern "C" fn()` with the C runtime. A failure to
    // register (only when out of memory) means the handlers do not run at exit.
    AT_EXIT.call_once(|| unsafe {
        c_atexit(finalize_all);
    });
    HANDLERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Handler {
            function,
            argument,
            dso,
        });
    0
}

extern "C" fn finalize_all() {
    // SAFETY: at exit every handler still registered runs, as the C runtime would.
    unsafe { cxa_finalize(std::ptr::null_mut()) };
}

/// Runs, latest first, the handlers registered with `dso` (all of them when `dso` is null),
/// each once. A handler may register more; those registered for `dso` meanwhile run too.
///
/// # Safety
/// The handlers' code must still be mapped.
pub(crate) unsafe fn cxa_finalize(dso: *mut c_void) {
    loop {
        let next = {
            let mut handlers = HANDLERS.lock().unwrap_or_else(|p| p.into_inner());
            let found = handlers.iter().rposition(|h| dso.is_null() || h.dso == dso);
            found.map(|index| handlers.remove(index))
        };
        let Some(handler) = next else {
            return;
        };
        // SAFETY: registered by module code with this argument (`cxa_atexit`'s contract),
        // run once: it was removed from the list first, and the lock is not held.
        unsafe { (handler.function)(handler.argument) };
    }
}
