//! Fork and quick-exit handlers of modules where the loader does not keep them (anything but
//! glibc so far; see `exit_handlers.rs`): modules get the C library's functions, and an
//! unloaded module's handlers stay registered, as they would with the system's `dlclose`
//! wherever `__cxa_finalize` does not remove them.

use std::ops::Range;

/// The loader provides none of these functions here.
pub(crate) fn provided(_name: &str) -> Option<usize> {
    None
}

/// Nothing to remove.
pub(crate) fn forget(_image: Range<usize>) {}
