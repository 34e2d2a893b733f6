//! A crash report for module code: on SIGSEGV, SIGILL, SIGBUS or SIGFPE, one line on stderr
//! naming the signal and the module function that was running, then the signal again with
//! its default action, so the process ends as it would have without the handler (killed by
//! the signal, with a core dump where enabled).
//!
//! The handler runs on an alternate stack (so a stack overflow in the main thread is
//! reported too), allocates nothing, and only tries the loader's module list lock: if another
//! thread holds it for writing, the line gives the bare address.

use std::fmt::Write as _;
use std::io;

const SIGNALS: [(libc::c_int, &str, &str); 4] = [
    (libc::SIGSEGV, "SIGSEGV", "invalid memory reference"),
    (libc::SIGBUS, "SIGBUS", "bus error"),
    (libc::SIGILL, "SIGILL", "illegal instruction"),
    (libc::SIGFPE, "SIGFPE", "arithmetic exception"),
];

const ALT_STACK_SIZE: usize = 64 * 1024;

/// Installs the crash handler for the calling thread's alternate stack and the whole
/// process's SIGSEGV, SIGBUS, SIGILL and SIGFPE. `smf run` calls it before running a program.
pub fn install_crash_handler() -> io::Result<()> {
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
    for (signal, _, _) in SIGNALS {
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

/// A fixed buffer for formatting without allocating.
struct Line {
    bytes: [u8; 768],
    len: usize,
}

impl std::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.bytes.len() - self.len;
        let n = s.len().min(room);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// The program counter of the interrupted code.
fn interrupted_pc(context: *mut libc::c_void) -> Option<usize> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        if context.is_null() {
            return None;
        }
        // SAFETY: with SA_SIGINFO the kernel passes a valid ucontext_t as the third argument.
        let context = unsafe { &*context.cast::<libc::ucontext_t>() };
        Some(context.uc_mcontext.gregs[libc::REG_RIP as usize] as usize)
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        let _ = context;
        None
    }
}

extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let (name, what) = SIGNALS
        .iter()
        .find(|(s, _, _)| *s == signal)
        .map_or(("signal", "fatal signal"), |(_, n, w)| (*n, *w));
    let mut line = Line {
        bytes: [0; 768],
        len: 0,
    };
    let _ = write!(line, "smf: {name} ({what}");
    // SAFETY: the kernel passes a valid siginfo_t with SA_SIGINFO.
    let from_kernel = !info.is_null() && unsafe { (*info).si_code } > 0;
    if from_kernel && matches!(signal, libc::SIGSEGV | libc::SIGBUS) {
        // SAFETY: as above; si_addr is the faulting address of a kernel-sent SIGSEGV/SIGBUS.
        let address = unsafe { (*info).si_addr() } as usize;
        let _ = write!(line, " at {address:#x}");
    }
    let _ = write!(line, ")");
    if let Some(pc) = interrupted_pc(context) {
        if crate::runtime::try_with_symbols(pc, |_| ()).is_some() {
            let _ = write!(line, " in ");
            name_address(&mut line, pc);
        } else {
            let _ = write!(line, " at pc {pc:#x}, outside any module");
            if let Some(caller) = nearest_module_frame() {
                let _ = write!(line, ", called from ");
                name_address(&mut line, caller);
            }
        }
    }
    let _ = writeln!(line);
    // SAFETY: write(2), signal(2) and raise(3) are async-signal-safe; the buffer is ours.
    unsafe {
        libc::write(2, line.bytes.as_ptr().cast(), line.len);
        // Default action, delivered as soon as the handler returns (the signal is blocked
        // while it runs); a fault would also recur when the instruction is retried.
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

/// Writes `function+offset (module)` for an address inside a module.
fn name_address(line: &mut Line, address: usize) {
    crate::runtime::try_with_symbols(address, |symbols| match symbols.function_at(address) {
        Some(function) => {
            let _ = write!(
                line,
                "{}+{:#x} ({})",
                symbols.name_of(function),
                address - function.start,
                symbols.module
            );
        }
        None => {
            let _ = write!(line, "{}+{:#x}", symbols.module, address - symbols.base);
        }
    });
}

/// The innermost frame of the interrupted thread that is module code, for a crash inside a
/// library a module called. Walks the stack with the C runtime's unwinder, which knows the
/// module tables (registered at load) and the signal frame. Not async-signal-safe in
/// theory (the unwinder may take its lock): a risk taken only when the crash is outside
/// module code and already fatal.
fn nearest_module_frame() -> Option<usize> {
    struct Search {
        found: Option<usize>,
        frames: u32,
    }
    extern "C" fn visit(context: *mut UnwindContext, search: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `search` is the `Search` passed to _Unwind_Backtrace below; `context` is
        // the unwinder's live frame context.
        let (search, ip) = unsafe { (&mut *search.cast::<Search>(), _Unwind_GetIP(context)) };
        search.frames += 1;
        // A return address points after the call: look up the call instruction's last byte.
        let candidate = ip.saturating_sub(1);
        if crate::runtime::try_with_symbols(candidate, |_| ()).is_some() {
            search.found = Some(candidate);
            return URC_END_OF_STACK;
        }
        if search.frames > 256 {
            return URC_END_OF_STACK;
        }
        URC_NO_REASON
    }
    let mut search = Search {
        found: None,
        frames: 0,
    };
    // SAFETY: the callback has the signature libgcc expects and only reads the context.
    unsafe { _Unwind_Backtrace(visit, (&raw mut search).cast()) };
    search.found
}

#[repr(C)]
struct UnwindContext {
    _opaque: [u8; 0],
}

const URC_NO_REASON: libc::c_int = 0;
const URC_END_OF_STACK: libc::c_int = 5;

unsafe extern "C" {
    fn _Unwind_Backtrace(
        trace: extern "C" fn(*mut UnwindContext, *mut libc::c_void) -> libc::c_int,
        argument: *mut libc::c_void,
    ) -> libc::c_int;
    fn _Unwind_GetIP(context: *mut UnwindContext) -> usize;
}
