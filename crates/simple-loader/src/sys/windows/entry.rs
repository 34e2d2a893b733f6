//! Calling a module's `main` so that a C++ exception none of its frames catches ends the
//! process as it ends a native program.
//!
//! libgcc on Windows throws with `RaiseException(STATUS_GCC_THROW)` (`unwind-seh.c`); when no
//! frame claims the exception, the filter mingw-w64's start-up code installs lets it continue,
//! `RaiseException` returns, `_Unwind_RaiseException` reports `_URC_END_OF_STACK`, and
//! `__cxa_throw` calls `std::terminate` (which prints the exception and aborts: status 3).
//! Called from Rust, the search would instead reach the Rust runtime's frames, whose
//! `catch_unwind` claims every exception and, finding a foreign one, ends the process with a
//! fail-fast. So `main` is called through [`call_main`], whose frame has an exception handler
//! that does what that filter does for a GCC exception that is not Rust's own: it continues
//! the exception where it was raised. Frames between (the module's) are searched first, so
//! an exception any of them catches never gets there; a Rust panic from a host callback goes
//! on to the host's `catch_unwind`.

use std::ffi::{c_char, c_int, c_void};

use windows_sys::Win32::System::Diagnostics::Debug::{CONTEXT, EXCEPTION_RECORD};
use windows_sys::Win32::System::Kernel::{
    EXCEPTION_DISPOSITION, ExceptionContinueExecution, ExceptionContinueSearch,
};

/// A C `main`.
pub(crate) type Main = extern "C" fn(c_int, *mut *mut c_char) -> c_int;

/// libgcc's `STATUS_GCC_THROW` (`unwind-seh.c`): a customer status (bit 29), type 0, `GCC`.
const STATUS_GCC_THROW: u32 = 0x2047_4343;
/// The exception flags of an unwind (`EXCEPTION_UNWINDING`, `EXCEPTION_EXIT_UNWIND`) and of an
/// exception that cannot continue (`EXCEPTION_NONCONTINUABLE`).
const UNWINDING_OR_NONCONTINUABLE: u32 = 0x2 | 0x4 | 0x1;
/// The `exception_class` of Rust's panics (`panic_unwind`'s `RUST_EXCEPTION_CLASS`).
const RUST_EXCEPTION_CLASS: u64 = u64::from_ne_bytes(*b"MOZ\0RUST");

// `smf_loader_call_main(main, argc, argv)`: calls `main(argc, argv)` in a frame whose
// function table entry names `continue_foreign_throw` as its exception handler. The `nop`
// keeps the return address inside the function's body, before the epilogue, as the unwinder
// requires of a frame it asks the handler about.
core::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl smf_loader_call_main",
    ".def smf_loader_call_main; .scl 2; .type 32; .endef",
    "smf_loader_call_main:",
    ".seh_proc smf_loader_call_main",
    "sub rsp, 40",
    ".seh_stackalloc 40",
    ".seh_endprologue",
    "mov rax, rcx",
    "mov ecx, edx",
    "mov rdx, r8",
    "call rax",
    "nop",
    "add rsp, 40",
    "ret",
    ".seh_handler {handler}, @except",
    ".seh_endproc",
    handler = sym continue_foreign_throw,
);

unsafe extern "C" {
    fn smf_loader_call_main(main: Main, argc: c_int, argv: *mut *mut c_char) -> c_int;
}

/// Calls `main(argc, argv)`; a C++ exception that leaves it makes `std::terminate` run
/// where it was thrown, as in a native program (see the module documentation).
pub(crate) fn call_main(main: Main, argc: c_int, argv: *mut *mut c_char) -> c_int {
    // SAFETY: `smf_loader_call_main` (above) calls `main` with the two arguments in the
    // Windows x64 convention and returns its result; its frame is described by its function
    // table entry, so exceptions and unwinds pass through it.
    unsafe { smf_loader_call_main(main, argc, argv) }
}

/// The exception handler of `smf_loader_call_main`'s frame: continues a GCC exception that
/// is not a Rust panic, during the search for a handler; lets every other exception, and
/// every unwind, go on.
///
/// # Safety
/// Called by the system's exception dispatcher only, with a valid exception record.
unsafe extern "system" fn continue_foreign_throw(
    record: *const EXCEPTION_RECORD,
    _frame: *mut c_void,
    _context: *mut CONTEXT,
    _dispatcher: *mut c_void,
) -> EXCEPTION_DISPOSITION {
    // SAFETY: the dispatcher passes a valid exception record.
    let record = unsafe { &*record };
    if record.ExceptionCode as u32 != STATUS_GCC_THROW
        || record.ExceptionFlags & UNWINDING_OR_NONCONTINUABLE != 0
        || record.NumberParameters < 1
    {
        return ExceptionContinueSearch;
    }
    // SAFETY: libgcc raises STATUS_GCC_THROW with one parameter, the address of the thrown
    // `_Unwind_Exception`, whose first field is its 8-byte `exception_class`; the object
    // lives until the exception is caught or the process ends.
    let class = unsafe { (record.ExceptionInformation[0] as *const u64).read_unaligned() };
    if class == RUST_EXCEPTION_CLASS {
        return ExceptionContinueSearch;
    }
    ExceptionContinueExecution
}
