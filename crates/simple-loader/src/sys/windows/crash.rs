//! A crash report for module code, through a vectored exception handler: on an access
//! violation, illegal or privileged instruction, integer division by zero or overflow, stack
//! overflow or in-page error, one line on stderr naming the exception and the module
//! function that was running; then the search for a handler goes on as if the reporter were
//! not there (structured exception handlers, the unhandled-exception filter, and the process
//! ending with the exception's code).
//!
//! Vectored handlers see exceptions before frame-based handlers do, so an exception a
//! handler would catch (`__try` around a deliberate fault) is reported too: the line only
//! describes, it never changes what happens next. The handler allocates nothing, only
//! *tries* the loader's module-list lock, and reads the stack with `ReadProcessMemory`,
//! which reports an unreadable page instead of faulting.

use std::fmt::Write as _;
use std::io;
use std::sync::Mutex;

use windows_sys::Win32::Foundation::{
    EXCEPTION_ACCESS_VIOLATION, EXCEPTION_ILLEGAL_INSTRUCTION, EXCEPTION_IN_PAGE_ERROR,
    EXCEPTION_INT_DIVIDE_BY_ZERO, EXCEPTION_INT_OVERFLOW, EXCEPTION_PRIV_INSTRUCTION,
    EXCEPTION_STACK_OVERFLOW, NTSTATUS,
};
use windows_sys::Win32::System::Diagnostics::Debug::{
    AddVectoredExceptionHandler, EXCEPTION_CONTINUE_SEARCH, EXCEPTION_POINTERS, ReadProcessMemory,
};
use windows_sys::Win32::System::Threading::GetCurrentProcess;

use crate::sys::arch::Interrupted;
use crate::sys::report::{self, Line};

const EXCEPTIONS: [(NTSTATUS, &str, &str); 7] = [
    (
        EXCEPTION_ACCESS_VIOLATION,
        "EXCEPTION_ACCESS_VIOLATION",
        "invalid memory reference",
    ),
    (
        EXCEPTION_IN_PAGE_ERROR,
        "EXCEPTION_IN_PAGE_ERROR",
        "page could not be read",
    ),
    (
        EXCEPTION_ILLEGAL_INSTRUCTION,
        "EXCEPTION_ILLEGAL_INSTRUCTION",
        "illegal instruction",
    ),
    (
        EXCEPTION_PRIV_INSTRUCTION,
        "EXCEPTION_PRIV_INSTRUCTION",
        "privileged instruction",
    ),
    (
        EXCEPTION_INT_DIVIDE_BY_ZERO,
        "EXCEPTION_INT_DIVIDE_BY_ZERO",
        "integer division by zero",
    ),
    (
        EXCEPTION_INT_OVERFLOW,
        "EXCEPTION_INT_OVERFLOW",
        "integer overflow",
    ),
    (
        EXCEPTION_STACK_OVERFLOW,
        "EXCEPTION_STACK_OVERFLOW",
        "stack overflow",
    ),
];

/// Whether the handler is installed; installing again does nothing.
static INSTALLED: Mutex<bool> = Mutex::new(false);

/// Installs the crash reporter as the first vectored exception handler of the process.
/// `smf run` calls it before running a program. See `docs/RUNTIME.md`, *Crash reports*.
pub fn install_crash_handler() -> io::Result<()> {
    let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
    if *installed {
        return Ok(());
    }
    // Reports name source lines from source maps validated beforehand.
    crate::runtime::prepare_crash_reports();
    // SAFETY: the handler has the signature the system calls it with and lives forever.
    let handle = unsafe { AddVectoredExceptionHandler(1, Some(handler)) };
    if handle.is_null() {
        return Err(io::Error::last_os_error());
    }
    *installed = true;
    Ok(())
}

unsafe extern "system" fn handler(pointers: *mut EXCEPTION_POINTERS) -> i32 {
    // SAFETY: the system passes valid exception and context records for the duration of
    // the call.
    let (record, context) = unsafe {
        let pointers = &*pointers;
        (&*pointers.ExceptionRecord, &*pointers.ContextRecord)
    };
    let Some((name, what)) = EXCEPTIONS
        .iter()
        .find(|(code, _, _)| *code == record.ExceptionCode)
        .map(|(_, name, what)| (*name, *what))
    else {
        return EXCEPTION_CONTINUE_SEARCH;
    };
    let mut line = Line::new();
    let _ = write!(line, "smf: {name} ({what}");
    if record.ExceptionCode == EXCEPTION_ACCESS_VIOLATION && record.NumberParameters >= 2 {
        // The second parameter of an access violation is the address that was accessed.
        let _ = write!(line, " at {:#x}", record.ExceptionInformation[1]);
    }
    let _ = write!(line, ")");
    let interrupted = Interrupted {
        pc: context.Rip as usize,
        sp: context.Rsp as usize,
        link: None,
    };
    report::locate(&mut line, interrupted, read_own_memory);
    let _ = writeln!(line);
    crate::sys::write_stderr(&line.bytes[..line.len]);
    EXCEPTION_CONTINUE_SEARCH
}

/// Copies memory of this process at `address` into `words` without faulting; false if it is
/// not all readable.
fn read_own_memory(address: usize, words: &mut [usize]) -> bool {
    let len = size_of_val(words);
    let mut read = 0usize;
    // SAFETY: the system writes at most `len` bytes into `words`, and reports unreadable
    // source pages as a failure rather than faulting.
    let ok = unsafe {
        ReadProcessMemory(
            GetCurrentProcess(),
            address as *const _,
            words.as_mut_ptr().cast(),
            len,
            &mut read,
        )
    };
    ok != 0 && read == len
}
