//! Platform layer: the only place to edit when porting the loader.
//!
//! It offers a [`Reservation`] of address space whose pages change protection through
//! [`Protection`], which has no writable-and-executable value, so no page of a module can be
//! both at once.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;
#[cfg(unix)]
pub(crate) mod crash;
#[cfg(unix)]
pub(crate) mod unwind;

#[cfg(not(unix))]
compile_error!(
    "simple-loader supports Unix-like systems only so far; add a sys/ file for this platform"
);

/// Page protections the loader uses. There is deliberately no read+write+execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protection {
    Read,
    ReadWrite,
    ReadExecute,
}
