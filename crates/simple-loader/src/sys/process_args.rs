//! The process's own `argc`/`argv`, and its environment, for module constructors.
//!
//! With glibc they are taken the way Rust's standard library takes them: glibc calls every
//! `.init_array` function of the program and of each shared object with `(argc, argv, envp)`
//! (a documented GNU extension, also in static programs and in libraries opened with
//! `dlopen`), so a function of the loader's own in `.init_array` records them before any Rust
//! code runs. That `argv` is the array the kernel put on the initial stack, which lives for
//! the whole process: module code may keep pointers into it, as native code does. Reading
//! `/proc/self/cmdline` instead would need `/proc` mounted, and give copies that C code
//! writing `argv[0]` (`setproctitle`) could not change.
//!
//! Elsewhere (other C libraries, and Windows, do not pass the arguments), and in the unlikely case the
//! recorded function did not run, the arguments are rebuilt once from `std::env::args_os`
//! into an array that is never freed.

use std::ffi::{c_char, c_int};
use std::sync::OnceLock;

use crate::arguments::Argv;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::ffi::{c_char, c_int};
    use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

    pub(super) static ARGC: AtomicI32 = AtomicI32::new(0);
    pub(super) static ARGV: AtomicPtr<*mut c_char> = AtomicPtr::new(std::ptr::null_mut());

    /// Called by glibc, before `main`, with the process's arguments.
    extern "C" fn record(argc: c_int, argv: *mut *mut c_char, _envp: *mut *mut c_char) {
        ARGC.store(argc, Ordering::Relaxed);
        ARGV.store(argv, Ordering::Release);
    }

    /// Referred to by [`super::process_arguments`], so that the object holding it is always
    /// linked with the code that reads what it records.
    #[used]
    #[unsafe(link_section = ".init_array")]
    pub(super) static RECORD: extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) = record;

    pub(super) fn recorded() -> Option<(c_int, *mut *mut c_char)> {
        // Keeps `RECORD` referenced from the reading code (see its comment).
        std::hint::black_box(&RECORD);
        let argv = ARGV.load(Ordering::Acquire);
        (!argv.is_null()).then(|| (ARGC.load(Ordering::Relaxed), argv))
    }
}

/// The process's `argc` and `argv`, valid for the rest of the process.
pub(crate) fn process_arguments() -> (c_int, *mut *mut c_char) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if let Some(recorded) = glibc::recorded() {
        return recorded;
    }
    static REBUILT: OnceLock<Argv> = OnceLock::new();
    let argv = REBUILT.get_or_init(|| Argv::new(std::env::args_os()));
    (argv.argc(), argv.argv())
}

/// The C library's `environ` now: what glibc passes as `envp`, valid until the environment
/// is next changed (`setenv` and `putenv` may replace the array).
#[cfg(unix)]
pub(crate) fn environment() -> *mut *mut c_char {
    unsafe extern "C" {
        static environ: *mut *mut c_char;
    }
    // SAFETY: reading a pointer-sized C global. Another thread calling `setenv` meanwhile
    // races with this read as it does with any `getenv`; the C library gives no lock for it.
    unsafe { environ }
}

/// The C runtime's `_environ` now (msvcrt's data export, which mingw's `_environ` reads):
/// what C code there sees as its environment.
#[cfg(windows)]
pub(crate) fn environment() -> *mut *mut c_char {
    #[link(name = "msvcrt", kind = "dylib")]
    unsafe extern "C" {
        static _environ: *mut *mut c_char;
    }
    // SAFETY: reading msvcrt's pointer-sized global. Another thread calling `_putenv`
    // meanwhile races with this read as it would with any `getenv`.
    unsafe { _environ }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    #[test]
    fn process_arguments_are_this_process_s() {
        let (argc, argv) = super::process_arguments();
        let expected: Vec<std::ffi::OsString> = std::env::args_os().collect();
        assert_eq!(argc as usize, expected.len());
        for (i, arg) in expected.iter().enumerate() {
            // SAFETY: `argv` has `argc` valid C strings, then a null pointer.
            let got = unsafe { CStr::from_ptr(*argv.add(i)) };
            assert_eq!(got.to_bytes(), arg.as_encoded_bytes());
        }
        // SAFETY: as above.
        assert!(unsafe { *argv.add(expected.len()) }.is_null());
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_gave_the_arguments_to_the_loader_s_constructor() {
        assert!(super::glibc::recorded().is_some());
    }
}
