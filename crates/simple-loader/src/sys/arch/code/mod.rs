//! Reading module code, for the architecture a module was packed for (its header's, which a
//! loaded module shares with the host): where two versions of a function differ only in
//! fields that locate something by its address relative to the instruction. Unlike the rest
//! of `arch/`, this is byte decoding only and is compiled on every host, so that each
//! architecture's decoding is tested everywhere.
//!
//! Each file defines `reference_field(x, x_at, y, y_at, i, from, same)`: `x` and `y` are the
//! bytes of one function in two versions, at image offsets `x_at` and `y_at`, that differ at
//! byte `i`; `from` is the end of the last field already taken. It returns the end of the
//! field (or instruction) covering byte `i` when the two versions' instructions there differ
//! only in PC-relative fields whose targets `same(target_in_x, target_in_y)` accepts (the
//! caller's judgement that they are the same place), and `None` otherwise.

mod aarch64;
mod x86_64;

use smf_format::Arch;

/// `reference_field` of `arch`'s file.
#[allow(clippy::too_many_arguments)]
pub(crate) fn reference_field(
    arch: Arch,
    x: &[u8],
    x_at: u64,
    y: &[u8],
    y_at: u64,
    i: usize,
    from: usize,
    same: &dyn Fn(u64, u64) -> bool,
) -> Option<usize> {
    match arch {
        Arch::X86_64 => x86_64::reference_field(x, x_at, y, y_at, i, from, same),
        Arch::Aarch64 => aarch64::reference_field(x, x_at, y, y_at, i, from, same),
    }
}
