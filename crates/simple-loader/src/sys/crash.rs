//! A crash report for module code: on SIGSEGV, SIGILL, SIGBUS or SIGFPE, one line on stderr
//! naming the signal and the module function that was running, then whatever the process had
//! for that signal before: the handler installed earlier (called as the kernel would have
//! called it), or the default action (the signal again, so the process ends as it would have
//! without the handler: killed by the signal, with a core dump where enabled).
//!
//! The handler runs on an alternate stack (so a stack overflow in the installing thread is
//! reported too) and only calls what is async-signal-safe: it allocates nothing, formats into
//! a buffer on its stack, only *tries* the loader's module-list lock (if another thread holds
//! it for writing, the line gives the bare address), and reads the interrupted stack with
//! `process_vm_readv`, which reports an unreadable page instead of faulting. The C runtime's
//! unwinder is not used: it takes locks and allocates (libgcc sorts a registered module's
//! unwind tables with `malloc` on the first lookup), which can deadlock or fault again when
//! the crash was in the allocator.

use std::fmt::Write as _;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicUsize, Ordering};

use super::arch;
use super::report::{self, Line};

const SIGNALS: [(libc::c_int, &str, &str); 4] = [
    (libc::SIGSEGV, "SIGSEGV", "invalid memory reference"),
    (libc::SIGBUS, "SIGBUS", "bus error"),
    (libc::SIGILL, "SIGILL", "illegal instruction"),
    (libc::SIGFPE, "SIGFPE", "arithmetic exception"),
];

const ALT_STACK_SIZE: usize = 64 * 1024;

/// The action each signal of [`SIGNALS`] had before the crash handler, by index; null until
/// installed. Each is leaked: a handler in another thread may be reading an older one.
static PREVIOUS: [AtomicPtr<libc::sigaction>; 4] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; 4];

/// Serializes installs, so that two cannot both save the other's handler as the previous one.
static INSTALL: Mutex<()> = Mutex::new(());

/// Installs the crash handler for the calling thread's alternate stack and the whole
/// process's SIGSEGV, SIGBUS, SIGILL and SIGFPE. `smf run` calls it before running a program.
///
/// The action each signal had before is kept, and runs after the report line (see
/// `docs/RUNTIME.md`, *Crash reports*). Installing again keeps the actions saved the first
/// time for signals whose handler is still this one, so the handler never chains to itself.
pub fn install_crash_handler() -> io::Result<()> {
    let _installing = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    // Reports name source lines from source maps validated beforehand.
    crate::runtime::prepare_crash_reports();
    install_alternate_stack()?;
    for (index, (signal, _, _)) in SIGNALS.into_iter().enumerate() {
        // SAFETY: querying a signal's action writes only `current`.
        let current = unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut current) != 0 {
                return Err(io::Error::last_os_error());
            }
            current
        };
        if current.sa_sigaction != handler as *const () as usize {
            let saved = Box::into_raw(Box::new(current));
            PREVIOUS[index].store(saved, Ordering::Release);
        }
        // SAFETY: a zeroed sigaction is a valid starting point; the handler has the
        // three-argument signature SA_SIGINFO requires.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Gives the calling thread an alternate signal stack of [`ALT_STACK_SIZE`] bytes, unless it
/// has one at least that large (from an earlier install, or the host's own).
fn install_alternate_stack() -> io::Result<()> {
    // SAFETY: querying the alternate stack writes only `current`.
    let current = unsafe {
        let mut current: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(std::ptr::null(), &mut current) != 0 {
            return Err(io::Error::last_os_error());
        }
        current
    };
    if current.ss_flags & libc::SS_DISABLE == 0 && current.ss_size >= ALT_STACK_SIZE {
        return Ok(());
    }
    // The alternate stack lives for the rest of the process: the handler may run any time.
    let stack: &'static mut [u8] = Box::leak(vec![0u8; ALT_STACK_SIZE].into_boxed_slice());
    let alt = libc::stack_t {
        ss_sp: stack.as_mut_ptr().cast(),
        ss_flags: 0,
        ss_size: stack.len(),
    };
    // SAFETY: `alt` describes memory that stays valid and unused by anything else.
    if unsafe { libc::sigaltstack(&alt, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The handler call under way in one thread that chained to a previous handler: if that
/// handler calls this one back (it replaced the crash handler and chains to what it
/// replaced, and the crash handler was installed again after it), the cycle ends there.
struct Chaining {
    thread: AtomicI32,
    context: AtomicUsize,
    frame: AtomicUsize,
}

/// One per signal of [`SIGNALS`]. Only one thread at a time is recorded; a second thread
/// crashing with the same signal meanwhile is not, and is not protected from a cycle.
static CHAINING: [Chaining; 4] = [const {
    Chaining {
        thread: AtomicI32::new(0),
        context: AtomicUsize::new(0),
        frame: AtomicUsize::new(0),
    }
}; 4];

fn thread_id() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // A handler that returns (a previous handler may resume the program) leaves errno as the
    // interrupted code had it.
    // SAFETY: __errno_location returns the calling thread's errno, valid for its lifetime.
    let errno = unsafe { *libc::__errno_location() };
    handle(signal, info, context);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

fn handle(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Some(index) = SIGNALS.iter().position(|(s, _, _)| *s == signal) else {
        return;
    };
    let frame = std::hint::black_box(&index) as *const usize as usize;
    let chaining = &CHAINING[index];
    let thread = thread_id();
    // Called back, deeper on this thread's stack and for the same delivery, by the handler
    // this one chained to: that handler's predecessor is the crash handler itself.
    if chaining.thread.load(Ordering::Acquire) == thread
        && chaining.context.load(Ordering::Relaxed) == context as usize
        && frame < chaining.frame.load(Ordering::Relaxed)
    {
        default_action(signal);
        return;
    }
    // SAFETY: PREVIOUS holds null or a leaked sigaction that is never freed.
    let previous = unsafe { PREVIOUS[index].load(Ordering::Acquire).as_ref() };
    let previous_handler = previous.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    // SAFETY: the kernel passes a valid siginfo_t with SA_SIGINFO.
    let from_kernel = !info.is_null() && unsafe { (*info).si_code } > 0;
    // A signal sent to a process that ignores it is not a crash: it stays ignored. A fault
    // cannot be ignored (the instruction would fault again), so it is reported and fatal.
    if previous_handler == libc::SIG_IGN && !from_kernel {
        return;
    }
    write_report(signal, info, context, from_kernel);
    let previous = match previous {
        Some(previous) if ![libc::SIG_DFL, libc::SIG_IGN].contains(&previous_handler) => previous,
        _ => {
            default_action(signal);
            return;
        }
    };
    // Recorded unless another thread is chaining for the same signal; a record of this
    // thread's own is stale (the handler it chained to left with siglongjmp) and replaced.
    let recorded =
        match chaining
            .thread
            .compare_exchange(0, thread, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(owner) => owner == thread,
        };
    if recorded {
        chaining.context.store(context as usize, Ordering::Relaxed);
        chaining.frame.store(frame, Ordering::Relaxed);
    }
    // SAFETY: the previous action's handler was installed for this signal by the host, with
    // the signature its SA_SIGINFO flag says; it gets the arguments the kernel gave.
    unsafe {
        if previous.sa_flags & libc::SA_SIGINFO != 0 {
            let previous: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(previous_handler);
            previous(signal, info, context);
        } else {
            let previous: extern "C" fn(libc::c_int) = std::mem::transmute(previous_handler);
            previous(signal);
        }
    }
    if recorded {
        chaining.thread.store(0, Ordering::Release);
    }
    // The previous handler returned. If it restored the default action, as Rust's standard
    // library and many crash reporters do to let the signal end the process, a signal that
    // was sent (not a fault, which recurs when the instruction is retried) would be lost:
    // raise it again.
    // SAFETY: querying a signal's action writes only `current`; raise is async-signal-safe.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_DFL
        {
            libc::raise(signal);
        }
    }
}

/// Restores the default action and raises the signal again: delivered as soon as the handler
/// returns (the signal is blocked while it runs), so the process dies of it. A fault would
/// also recur when the instruction is retried.
fn default_action(signal: libc::c_int) {
    // SAFETY: signal(2) and raise(3) are async-signal-safe.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

/// Writes the report line to stderr.
fn write_report(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
    from_kernel: bool,
) {
    let (name, what) = SIGNALS
        .iter()
        .find(|(s, _, _)| *s == signal)
        .map_or(("signal", "fatal signal"), |(_, n, w)| (*n, *w));
    let mut line = Line::new();
    let _ = write!(line, "smf: {name} ({what}");
    if from_kernel && matches!(signal, libc::SIGSEGV | libc::SIGBUS) {
        // SAFETY: si_addr is the faulting address of a kernel-sent SIGSEGV/SIGBUS.
        let address = unsafe { (*info).si_addr() } as usize;
        let _ = write!(line, " at {address:#x}");
    }
    let _ = write!(line, ")");
    // SAFETY: `context` is the third argument of this SA_SIGINFO handler.
    if let Some(interrupted) = unsafe { arch::interrupted_registers(context) } {
        report::locate(&mut line, interrupted, read_own_memory);
    }
    let _ = writeln!(line);
    // SAFETY: write(2) is async-signal-safe; the buffer is ours.
    unsafe { libc::write(2, line.bytes.as_ptr().cast(), line.len) };
}

/// Copies memory of this process at `address` into `words` without faulting; false if it is
/// not all readable.
fn read_own_memory(address: usize, words: &mut [usize]) -> bool {
    let len = size_of_val(words);
    let local = libc::iovec {
        iov_base: words.as_mut_ptr().cast(),
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: address as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: the kernel writes at most `len` bytes into `words`, and reports unreadable
    // source pages as a short count or an error rather than faulting.
    let read = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    usize::try_from(read) == Ok(len)
}
