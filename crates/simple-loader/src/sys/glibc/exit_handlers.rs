//! Fork and quick-exit handlers registered by modules, kept by the loader so that unloading a
//! module takes its handlers back.
//!
//! The C library keeps a `pthread_atfork` or `at_quick_exit` handler until the object that
//! registered it is finalized (`__cxa_finalize` with its `__dso_handle`), and knows nothing
//! of module images: a handler left by an unloaded module is a call into unmapped code at
//! the next `fork()` or `quick_exit()`. So modules get the loader's registration functions
//! instead of the C library's (see [`provided`]): `pthread_atfork` and `at_quick_exit`, and
//! `__register_atfork` and `__cxa_at_quick_exit`, which the packer's stubs call with the
//! module's `__dso_handle` as `libc_nonshared.a` does. Each handler is recorded with that
//! handle. The loader registers one set of dispatchers with the C library, the first time a
//! module registers a handler of each sort, and they run the modules' handlers. When a
//! module's image is detached, before it is unmapped, [`forget`] removes every handler
//! registered with a handle inside the image or whose code lies in it.
//!
//! Order, as POSIX says and glibc does: prepare handlers in reverse registration order,
//! parent and child handlers in registration order; quick-exit handlers in reverse
//! registration order. Handlers registered while a fork runs its handlers take part from
//! the next fork, as in glibc; handlers registered by a quick-exit handler run in the same
//! `quick_exit`. Among the process's other handlers, all of the modules' run at the place
//! of the dispatcher: where the first module handler of that sort was registered.
//!
//! One recursive lock guards the lists and is held for the whole of a dispatch: from the
//! first prepare handler until the last parent (or child) handler of the same fork, and
//! through the quick-exit handlers. An unload on another thread waits meanwhile, so no
//! handler it removes is still about to be called. A handler may register handlers, or
//! unload a module, on its own thread: the lock is recursive, and the dispatcher looks each
//! handler up again before calling it, so one removed meanwhile is skipped. In the child of
//! a fork the lock is made anew: the thread that held it is the child's only thread, but
//! under a new thread id, which a recursive mutex checks.

use std::cell::UnsafeCell;
use std::ffi::{c_int, c_void};
use std::ops::Range;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

type Handler = Option<unsafe extern "C" fn()>;

/// One `pthread_atfork` registration.
#[derive(Debug, Clone, Copy)]
struct ForkHandlers {
    /// Registration order; never reused.
    id: u64,
    prepare: Handler,
    parent: Handler,
    child: Handler,
    /// The `__dso_handle` it was registered with, 0 for none.
    dso: usize,
}

/// One `at_quick_exit` registration.
#[derive(Debug, Clone, Copy)]
struct QuickExitHandler {
    function: unsafe extern "C" fn(),
    dso: usize,
}

#[derive(Debug)]
struct Handlers {
    /// By increasing id.
    fork: Vec<ForkHandlers>,
    next_id: u64,
    /// The last id whose prepare handler the fork in progress ran: its parent and child
    /// handlers run for these only.
    fork_last: u64,
    /// In registration order.
    quick_exit: Vec<QuickExitHandler>,
}

impl Handlers {
    /// Whether a registration belongs to the module whose image is `image`.
    fn in_image(image: &Range<usize>, dso: usize, functions: &[Handler]) -> bool {
        image.contains(&dso)
            || functions
                .iter()
                .flatten()
                .any(|&f| image.contains(&(f as usize)))
    }
}

struct State {
    lock: UnsafeCell<libc::pthread_mutex_t>,
    handlers: UnsafeCell<Handlers>,
}

// SAFETY: `handlers` is reached only through `Guard::with`, with `lock` held; the mutex is
// made to be shared between threads.
unsafe impl Sync for State {}

static STATE: State = State {
    lock: UnsafeCell::new(libc::PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP),
    handlers: UnsafeCell::new(Handlers {
        fork: Vec::new(),
        next_id: 1,
        fork_last: 0,
        quick_exit: Vec::new(),
    }),
};

/// Whether any module ever registered a handler: unloads skip the lock until one has.
static ANY: AtomicBool = AtomicBool::new(false);

/// The lock, held by this thread until dropped.
struct Guard(());

impl Guard {
    fn lock() -> Guard {
        // SAFETY: a valid, initialised mutex that never moves. A recursive mutex locked by
        // its owner again only counts up, so this cannot deadlock on this thread.
        unsafe { libc::pthread_mutex_lock(STATE.lock.get()) };
        Guard(())
    }

    /// The guard of a lock this thread took earlier and kept (`prepare`).
    ///
    /// # Safety
    /// This thread must hold the lock once more than the guards it has.
    unsafe fn held() -> Guard {
        Guard(())
    }

    /// Runs `f` on the lists. `f` must call no handler and nothing that could reach this
    /// module again, so that no other reference to the lists exists meanwhile, even on this
    /// thread (the lock is recursive).
    fn with<R>(&self, f: impl FnOnce(&mut Handlers) -> R) -> R {
        // SAFETY: this thread holds the lock (`self`), and `f` does not re-enter (above).
        f(unsafe { &mut *STATE.handlers.get() })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: this thread holds the lock (the guard says so).
        unsafe { libc::pthread_mutex_unlock(STATE.lock.get()) };
    }
}

unsafe extern "C" {
    /// C11 and POSIX; glibc's is in `libc_nonshared.a`, which its `libc.so` script links.
    fn at_quick_exit(function: unsafe extern "C" fn()) -> c_int;
}

/// Registers the fork dispatchers with the C library, once; the C library's answer.
fn fork_dispatch() -> c_int {
    static REGISTERED: OnceLock<c_int> = OnceLock::new();
    // SAFETY: three `extern "C" fn()` that stay mapped for the life of the process.
    *REGISTERED
        .get_or_init(|| unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) })
}

/// Registers the quick-exit dispatcher with the C library, once; the C library's answer.
fn quick_exit_dispatch() -> c_int {
    static REGISTERED: OnceLock<c_int> = OnceLock::new();
    // SAFETY: an `extern "C" fn()` that stays mapped for the life of the process.
    *REGISTERED.get_or_init(|| unsafe { at_quick_exit(run_quick_exit) })
}

/// The loader's `__register_atfork`, glibc's function behind `pthread_atfork`.
extern "C" fn register_atfork(
    prepare: Handler,
    parent: Handler,
    child: Handler,
    dso: *mut c_void,
) -> c_int {
    let rc = fork_dispatch();
    if rc != 0 {
        return rc;
    }
    ANY.store(true, Ordering::Relaxed);
    Guard::lock().with(|h| {
        if h.fork.try_reserve(1).is_err() {
            return libc::ENOMEM;
        }
        let id = h.next_id;
        h.next_id += 1;
        h.fork.push(ForkHandlers {
            id,
            prepare,
            parent,
            child,
            dso: dso as usize,
        });
        0
    })
}

/// The loader's `pthread_atfork`, for a module that calls it without a `__dso_handle`.
extern "C" fn pthread_atfork(prepare: Handler, parent: Handler, child: Handler) -> c_int {
    register_atfork(prepare, parent, child, std::ptr::null_mut())
}

/// The loader's `__cxa_at_quick_exit`, glibc's function behind `at_quick_exit`.
extern "C" fn cxa_at_quick_exit(function: Handler, dso: *mut c_void) -> c_int {
    let Some(function) = function else {
        // Nothing to call; glibc would record it and jump to address 0 at `quick_exit`.
        return 0;
    };
    let rc = quick_exit_dispatch();
    if rc != 0 {
        return rc;
    }
    ANY.store(true, Ordering::Relaxed);
    Guard::lock().with(|h| {
        if h.quick_exit.try_reserve(1).is_err() {
            return -1;
        }
        h.quick_exit.push(QuickExitHandler {
            function,
            dso: dso as usize,
        });
        0
    })
}

/// The loader's `at_quick_exit`, for a module that calls it without a `__dso_handle`.
extern "C" fn module_at_quick_exit(function: Handler) -> c_int {
    cxa_at_quick_exit(function, std::ptr::null_mut())
}

/// The address the loader gives a module for its import `name`, when the loader provides
/// that function itself; `None` for every other name.
pub(crate) fn provided(name: &str) -> Option<usize> {
    let address = match name {
        "__register_atfork" => register_atfork as *const () as usize,
        "pthread_atfork" => pthread_atfork as *const () as usize,
        "__cxa_at_quick_exit" => cxa_at_quick_exit as *const () as usize,
        "at_quick_exit" => module_at_quick_exit as *const () as usize,
        _ => return None,
    };
    Some(address)
}

/// Removes the handlers of the module whose image is `image`: those registered with a
/// `__dso_handle` inside it, or whose code lies in it. Called before the image is unmapped;
/// waits for a fork or `quick_exit` running handlers on another thread to finish them.
pub(crate) fn forget(image: Range<usize>) {
    if !ANY.load(Ordering::Relaxed) {
        return;
    }
    Guard::lock().with(|h| {
        h.fork
            .retain(|e| !Handlers::in_image(&image, e.dso, &[e.prepare, e.parent, e.child]));
        h.quick_exit
            .retain(|e| !Handlers::in_image(&image, e.dso, &[Some(e.function)]));
    });
}

/// The fork dispatcher's prepare handler: the modules' prepare handlers, last registered
/// first. Keeps the lock until `parent` or `child`.
extern "C" fn prepare() {
    let guard = Guard::lock();
    let last = guard.with(|h| {
        h.fork_last = h.next_id - 1;
        h.fork_last
    });
    // The next handler to run is the last one registered before the one that just ran.
    let mut below = last + 1;
    while let Some(handlers) = guard.with(|h| {
        let i = h.fork.partition_point(|e| e.id < below);
        i.checked_sub(1).map(|i| h.fork[i])
    }) {
        below = handlers.id;
        if let Some(prepare) = handlers.prepare {
            // SAFETY: a handler a module registered, still in the list, so its module is
            // not unloaded: unloading removes it first, and waits for the lock held here.
            unsafe { prepare() };
        }
    }
    // Held across the fork: no unload may take a handler away before its parent or child
    // handler ran.
    std::mem::forget(guard);
}

/// The fork dispatcher's parent handler: the modules' parent handlers, in registration
/// order; then gives back the lock `prepare` kept.
extern "C" fn parent() {
    // SAFETY: `prepare` ran on this thread just before the fork and kept the lock.
    let guard = unsafe { Guard::held() };
    run_after_fork(&guard, |h| h.parent);
}

/// The fork dispatcher's child handler, in the child: the modules' child handlers, in
/// registration order.
extern "C" fn child() {
    // The lock is still held by the thread that forked, which is this one, but the C library
    // gave it a new thread id: only making the mutex anew releases it. No other thread
    // exists yet to see this.
    // SAFETY: this thread is the only one in the process.
    unsafe {
        STATE
            .lock
            .get()
            .write(libc::PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP)
    };
    let guard = Guard::lock();
    run_after_fork(&guard, |h| h.child);
}

/// Runs the handler `which` picks of each registration whose prepare handler ran, in
/// registration order.
fn run_after_fork(guard: &Guard, which: fn(&ForkHandlers) -> Handler) {
    let last = guard.with(|h| h.fork_last);
    let mut after = 0;
    while let Some(handlers) = guard.with(|h| {
        let i = h.fork.partition_point(|e| e.id <= after);
        h.fork.get(i).copied().filter(|e| e.id <= last)
    }) {
        after = handlers.id;
        if let Some(handler) = which(&handlers) {
            // SAFETY: as in `prepare`.
            unsafe { handler() };
        }
    }
}

/// The quick-exit dispatcher: the modules' quick-exit handlers, last registered first, each
/// removed before it runs (so it runs once, as the C library's do).
extern "C" fn run_quick_exit() {
    let guard = Guard::lock();
    while let Some(handler) = guard.with(|h| h.quick_exit.pop()) {
        // SAFETY: a handler a module registered, in the list until just now, so its module
        // is not unloaded: unloading removes its handlers first, under the lock held here.
        unsafe { (handler.function)() };
    }
}
