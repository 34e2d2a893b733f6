//! Platform layer: the only place to edit when porting the loader. Processor-specific code
//! is in `arch/` (one file per architecture), the C library's in `glibc/`, the operating
//! system's in `unix.rs` and `windows/`.
//!
//! It offers a [`Reservation`] of address space whose pages change protection through
//! [`Protection`], which has no writable-and-executable value, so no page of a module can be
//! both at once.
//!
//! Each operating system's file defines the same items: `Reservation` (with `new`, `protect`,
//! `flush_instruction_cache`, `resident`, `populate_for_write` and the file mappings), `FileMap`,
//! `MAPS_FILES` (whether module files are mapped rather than copied), `PAGE_SIZE`,
//! `host_page_size`, `open_regular`, the native libraries (`NativeLibrary`, `open_library`,
//! `ProcessScope`, `symbol_address`, `native_symbol`, `executable_segments`), `ThreadKey`,
//! `write_stderr`, `call_main`, `at_exit`, `cxa_atexit` and `cxa_finalize`, and the modules
//! `crash` (the crash reporter), `unwind` (unwind table registration) and `tls_callbacks`
//! (Windows modules' TLS callbacks).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;
#[cfg(unix)]
pub(crate) mod crash;
#[cfg(unix)]
pub(crate) mod unwind;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
#[cfg(windows)]
pub(crate) use windows::{crash, tls_callbacks, unwind};
#[cfg(unix)]
pub(crate) mod tls_callbacks {
    //! TLS callbacks exist in Windows modules only (`windows/tls_callbacks.rs`): the reader
    //! refuses them in any other, so there is nothing to call here.

    /// No registration can exist here.
    #[derive(Debug)]
    pub(crate) enum TlsCallbacks {}

    impl TlsCallbacks {
        /// Nothing: a module for this platform has no TLS callbacks.
        ///
        /// # Safety
        /// None; the signature is that of Windows's.
        pub(crate) unsafe fn attach(
            _parsed: &smf_format::Module<'_>,
            _base: usize,
        ) -> Option<TlsCallbacks> {
            None
        }
    }
}
mod memory;
mod process_args;
mod report;
pub(crate) use process_args::{environment, process_arguments};
pub(crate) mod arch;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) use glibc::{exit_handlers, static_tls};
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
#[path = "exit_handlers_none.rs"]
pub(crate) mod exit_handlers;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) mod static_tls {
    //! Static thread-local blocks come from glibc's dynamic linker (see `sys/glibc`);
    //! elsewhere modules that need one are refused.

    /// No static block can exist here.
    #[derive(Debug)]
    pub(crate) enum StaticBlock {}

    impl StaticBlock {
        pub(crate) fn new(_: &[u8], _: u64, _: u64) -> std::io::Result<StaticBlock> {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "static thread-local blocks are only supported with glibc",
            ))
        }

        pub(crate) fn offset(&self) -> isize {
            match *self {}
        }

        pub(crate) fn address(&self) -> *mut u8 {
            match *self {}
        }
    }
}

#[cfg(not(any(unix, windows)))]
compile_error!(
    "simple-loader supports Unix-like systems and Windows so far; add a sys/ file for this platform"
);

/// Page protections the loader uses. There is deliberately no read+write+execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protection {
    Read,
    ReadWrite,
    ReadExecute,
}
