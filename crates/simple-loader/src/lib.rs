//! `simple-loader`: maps SMF modules into the process, links them and runs their code.
//!
//! The layers, from the bottom:
//! - `sys`: address-space reservations and page protection (the only platform code);
//! - `image`: one reservation per module, payloads placed as the file says, load-time
//!   relocations applied, then final protections (code read+execute, read-only data and
//!   relocated read-only data read-only, data and bss read+write — never write+execute);
//! - [`loader`]: validation, native libraries, import resolution, constructors;
//! - [`Module`]: a loaded module, its typed function handles and data accessors;
//! - [`Registry`]: modules cached by canonical path, resolving imports across them, and
//!   replaced in place by reloads: calls into reloadable modules go through indirection slots
//!   (`slots`) the registry retargets, state is carried over (`reload`), and old versions
//!   are freed once no pinned handle or thread can reach them ([`Current`], [`Pinned`]).
//!
//! ```no_run
//! use simple_loader::Registry;
//! use std::path::Path;
//!
//! let registry = Registry::new();
//! // SAFETY: math.smf is our own build of math.c, replaced by renaming, never rewritten.
//! let module = unsafe { registry.load(Path::new("math.smf"))? };
//! // SAFETY: `add` is defined in C as `long add(long, long)`.
//! let add = unsafe { module.get::<extern "C" fn(i64, i64) -> i64>("add")? };
//! assert_eq!(add(2, 3), 5);
//! # Ok::<(), simple_loader::LoadError>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]

/// The Rust snippets of the repository's README, compiled by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

mod arguments;
mod error;
mod handles;
mod image;
mod jit;
pub mod loader;
mod module;
mod perfmap;
mod process_imports;
mod reclaim;
mod registry;
mod reload;
mod runtime;
mod signature;
mod slots;
mod symbol_index;
mod symbolize;
mod sys;
mod tls;

pub use error::LoadError;
pub use handles::{Current, CurrentCall, Pinned};
pub use loader::{ImportResolver, LoadOptions, ModuleSource, Resolution, TypeChanges, load};
pub use module::{DataSymbol, Module, Symbol};
pub use perfmap::{enable_perf_map, perf_map_path};
pub use reclaim::PinGuard;
pub use registry::{ChosenDependency, LoadedModule, Registry, ReloadOptions};
pub use reload::{AFTER_RELOAD_HOOK, BEFORE_RELOAD_HOOK, ReloadReport};
pub use signature::{PublicKey, SignaturePolicy, read_module_file, read_signature_file};
pub use smf_format;
pub use smf_sign;
pub use symbolize::{Location, SourceLine, symbolize};
pub use sys::crash::install_crash_handler;

/// Ends the process as C's `exit` does, with `status`: the `atexit` handlers run (the
/// destructors of modules kept with [`Module::keep_until_exit`] among them), then the C
/// runtime's output buffers are flushed. (`std::process::exit` does the same on Linux, but on
/// Windows it ends the process without running the C runtime's exit handlers.)
pub fn exit(status: i32) -> ! {
    sys::exit(status)
}

/// The operating system this loader runs code for, as module headers name it: modules for
/// another one are refused (`any` modules load everywhere).
pub const HOST_PLATFORM: smf_format::Platform = if cfg!(windows) {
    smf_format::Platform::Windows
} else if cfg!(target_os = "macos") {
    smf_format::Platform::MacOs
} else {
    smf_format::Platform::Linux
};

/// The architecture this loader runs code for, if the format knows it.
pub const HOST_ARCH: Option<smf_format::Arch> = if cfg!(target_arch = "x86_64") {
    Some(smf_format::Arch::X86_64)
} else if cfg!(target_arch = "aarch64") {
    Some(smf_format::Arch::Aarch64)
} else {
    None
};
