//! What the loader needs from glibc beyond POSIX: static thread-local blocks from its
//! dynamic linker, and its fork and quick-exit handler lists.

pub(crate) mod exit_handlers;
pub(crate) mod static_tls;
