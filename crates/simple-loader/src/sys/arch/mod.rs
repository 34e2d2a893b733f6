//! What differs between processor architectures: one file per architecture, each defining
//! the same items. Porting the loader to another architecture means adding a file here (and
//! the C library's part under `sys/glibc` if it differs), not editing the generic code.
//!
//! Each file defines:
//! - `ELF_MACHINE` and `TPOFF_RELOCATION`: the `e_machine` of the ELF objects the loader
//!   writes in memory (the debugger's object, the static TLS carrier), and the relocation
//!   that asks the dynamic linker for a static TLS offset;
//! - `slot_trampoline(distance)`: the 8 bytes of a hot-reload trampoline that jumps through
//!   the word `distance` bytes after its own start;
//! - `flush_instruction_cache(range)`: makes code bytes written at `range` visible to
//!   instruction fetch;
//! - `thread_pointer()`: the calling thread's thread pointer;
//! - the assembly entry points `smf_loader_tls_get_addr` (calls `crate::tls::tls_get_addr`
//!   under the platform's calling convention) and `smf_loader_tls_descriptor` (the TLS
//!   descriptor resolver of a static block);
//! - `call_ifunc_resolver(resolver)`: calls an indirect function's resolver with the
//!   arguments the system's dynamic linker passes;
//! - `interrupted_registers(context)`: program counter, stack pointer and (where calls leave
//!   it in a register) return address of the code a signal interrupted;
//! - `follows_call(address, start, byte)`: whether code before `address` ends with a call.
//!
//! `code/` reads module code for the hot-reload report, one file per architecture too; it is
//! compiled on every host (see its documentation).

pub(crate) mod code;

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::*;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub(crate) use aarch64::*;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!(
    "simple-loader supports x86-64 and aarch64 so far; add a sys/arch file for this architecture"
);

/// What a signal interrupted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Interrupted {
    pub(crate) pc: usize,
    pub(crate) sp: usize,
    /// The return address register, on architectures whose calls leave it there (a leaf
    /// function outside a module that a module called may not have stored it on the stack).
    pub(crate) link: Option<usize>,
}
