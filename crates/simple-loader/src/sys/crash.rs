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
    if !info.is_null() && matches!(signal, libc::SIGSEGV | libc::SIGBUS) {
        // SAFETY: the kernel passes a valid siginfo_t with SA_SIGINFO; si_addr is meaningful
        // for these two signals.
        let address = unsafe { (*info).si_addr() } as usize;
        let _ = write!(line, " at {address:#x}");
    }
    let _ = write!(line, ")");
    match interrupted_pc(context) {
        Some(pc) => {
            let named =
                crate::runtime::try_with_symbols(pc, |symbols| match symbols.function_at(pc) {
                    Some(function) => {
                        let _ = write!(
                            line,
                            " in {}+{:#x} ({})",
                            symbols.name_of(function),
                            pc - function.start,
                            symbols.module
                        );
                    }
                    None => {
                        let _ = write!(line, " in {}+{:#x}", symbols.module, pc - symbols.base);
                    }
                });
            if named.is_none() {
                let _ = write!(line, " at pc {pc:#x}, outside any module");
            }
        }
        None => {}
    }
    let _ = write!(line, "\n");
    // SAFETY: write(2), signal(2) and raise(3) are async-signal-safe; the buffer is ours.
    unsafe {
        libc::write(2, line.bytes.as_ptr().cast(), line.len);
        // Default action, delivered as soon as the handler returns (the signal is blocked
        // while it runs); a fault would also recur when the instruction is retried.
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}
