//! AArch64 (ARMv8-A and later, little-endian).

use std::ops::Range;

use object::elf;

use super::Interrupted;

pub(crate) const ELF_MACHINE: elf::Machine = elf::EM_AARCH64;
/// The largest page size of the architecture's kernels (64 KiB, GNU ld's: kernels run with 4, 16 or 64 KiB pages): the
/// alignment of the loadable segments of ELF objects the loader writes for the dynamic linker.
pub(crate) const MAX_PAGE_SIZE: u64 = 0x10000;
pub(crate) const TPOFF_RELOCATION: elf::RelocationType = elf::R_AARCH64_TLS_TPREL;

/// `ldr x16, .+distance` (a PC-relative literal load of the slot word), then `br x16`. x16
/// (IP0) is the register the procedure call standard gives veneers and PLT entries, so no
/// caller expects it preserved across a call. The literal load's 19-bit word offset reaches
/// ±1 MiB, so any page size up to 64 KiB works. An aligned 64-bit load is single-copy
/// atomic, so a concurrent store to the slot is seen whole, old or new.
pub(crate) const fn slot_trampoline(distance: usize) -> [u8; 8] {
    assert!(distance % 4 == 0 && distance / 4 < (1 << 18));
    let ldr = (0x5800_0000 | ((distance as u32 / 4) << 5) | 16).to_le_bytes();
    let br = 0xd61f_0200u32.to_le_bytes(); // br x16
    [ldr[0], ldr[1], ldr[2], ldr[3], br[0], br[1], br[2], br[3]]
}

unsafe extern "C" {
    /// libgcc's (and compiler-rt's) cache maintenance for code written as data: cleans the
    /// data cache lines of the range to the point of unification (`dc cvau`), invalidates
    /// its instruction cache lines (`ic ivau`), with the barriers between, using the line
    /// sizes `CTR_EL0` gives, and skips either step when `CTR_EL0` says the hardware keeps
    /// them coherent.
    fn __clear_cache(start: *mut libc::c_char, end: *mut libc::c_char);
}

/// AArch64 does not keep instruction fetch coherent with stores: code written as data must
/// be cleaned from the data cache and invalidated in the instruction cache before it runs,
/// on every core (the `ic ivau` is broadcast to the inner shareable domain, and the `isb` of
/// other cores comes from the system call that makes the pages executable there).
pub(crate) fn flush_instruction_cache(range: Range<usize>) {
    if range.is_empty() {
        return;
    }
    // SAFETY: the caller's range is mapped and readable (cache maintenance by address needs
    // read permission only); `__clear_cache` changes no memory contents.
    unsafe {
        __clear_cache(
            range.start as *mut libc::c_char,
            range.end as *mut libc::c_char,
        )
    };
}

/// `TPIDR_EL0` is the thread pointer (TLS variant I: the thread control block at the
/// pointer, the static TLS blocks above it).
pub(crate) fn thread_pointer() -> usize {
    let tp: usize;
    // SAFETY: reading TPIDR_EL0 is allowed at EL0 and has no side effects.
    unsafe {
        std::arch::asm!("mrs {}, tpidr_el0", out(reg) tp, options(nomem, nostack, preserves_flags));
    }
    tp
}

// The `__tls_get_addr` entry modules call (code compiled with `-mtls-dialect=trad`): an
// ordinary call under the procedure call standard, whose stack pointer is always 16-byte
// aligned, so it goes straight to `tls_get_addr`.
std::arch::global_asm!(
    ".pushsection .text.smf_loader_tls_get_addr,\"ax\",%progbits",
    ".p2align 4",
    ".globl smf_loader_tls_get_addr",
    ".hidden smf_loader_tls_get_addr",
    ".type smf_loader_tls_get_addr,%function",
    "smf_loader_tls_get_addr:",
    "b {inner}",
    ".size smf_loader_tls_get_addr, . - smf_loader_tls_get_addr",
    ".popsection",
    inner = sym crate::tls::tls_get_addr,
);

// The function `tls_descriptor` relocations store in the first word of a TLS descriptor.
// Module code calls it (`blr`) with the descriptor's address in x0 and expects, in x0, the
// variable's offset from TPIDR_EL0, every other register (x1-x30, the vector registers) and
// the condition flags preserved: the AArch64 TLS descriptor convention, as glibc's
// `_dl_tlsdesc_return` implements it for static TLS. For a static block that offset is the
// descriptor's second word, which a `tp_offset` relocation set.
std::arch::global_asm!(
    ".pushsection .text.smf_loader_tls_descriptor,\"ax\",%progbits",
    ".p2align 4",
    ".globl smf_loader_tls_descriptor",
    ".hidden smf_loader_tls_descriptor",
    ".type smf_loader_tls_descriptor,%function",
    "smf_loader_tls_descriptor:",
    ".cfi_startproc",
    "ldr x0, [x0, #8]",
    "ret",
    ".cfi_endproc",
    ".size smf_loader_tls_descriptor, . - smf_loader_tls_descriptor",
    ".popsection",
);

/// glibc's `__ifunc_arg_t` (`<sys/ifunc.h>`) as of 2.36: the second argument of resolvers.
#[repr(C)]
struct IfuncArg {
    size: u64,
    hwcap: u64,
    hwcap2: u64,
}

/// Set in the first argument to say the second one is an `__ifunc_arg_t`.
const IFUNC_ARG_HWCAP: u64 = 1 << 62;

/// Calls an indirect function's resolver as glibc does on AArch64: with `AT_HWCAP` (and
/// [`IFUNC_ARG_HWCAP`]) and a pointer to `__ifunc_arg_t`, so resolvers can choose by CPU
/// feature without reading system registers.
///
/// # Safety
/// `resolver` must be the address of executable code that is a resolver.
pub(crate) unsafe fn call_ifunc_resolver(resolver: usize) -> u64 {
    // SAFETY: getauxval has no preconditions.
    let (hwcap, hwcap2) = unsafe {
        (
            libc::getauxval(libc::AT_HWCAP),
            libc::getauxval(libc::AT_HWCAP2),
        )
    };
    let arg = IfuncArg {
        size: size_of::<IfuncArg>() as u64,
        hwcap,
        hwcap2,
    };
    // SAFETY: the caller guarantees `resolver` is a resolver,
    // `u64 (uint64_t, const __ifunc_arg_t *)` in C; `arg` outlives the call.
    unsafe {
        let resolver = std::mem::transmute::<
            usize,
            unsafe extern "C" fn(u64, *const IfuncArg) -> u64,
        >(resolver);
        resolver(hwcap | IFUNC_ARG_HWCAP, &arg)
    }
}

/// The program counter, stack pointer and link register (x30) of the interrupted code.
///
/// # Safety
/// `context` must be null or the `ucontext_t` the kernel passed to an `SA_SIGINFO` handler.
pub(crate) unsafe fn interrupted_registers(context: *mut libc::c_void) -> Option<Interrupted> {
    if context.is_null() {
        return None;
    }
    // SAFETY: the caller passes the kernel's ucontext_t.
    let context = unsafe { &*context.cast::<libc::ucontext_t>() };
    let registers = &context.uc_mcontext;
    Some(Interrupted {
        pc: registers.pc as usize,
        sp: registers.sp as usize,
        link: Some(registers.regs[30] as usize),
    })
}

/// Whether the code in `start..address` ends with a call instruction: `bl` or `blr` (also the
/// pointer-authenticating `blraa`, `blrab`, `blraaz`, `blrabz`). `byte` reads code bytes in
/// that range.
pub(crate) fn follows_call(address: usize, start: usize, byte: impl Fn(usize) -> u8) -> bool {
    if address - start < 4 || address % 4 != 0 {
        return false;
    }
    let at = address - 4;
    let insn = u32::from_le_bytes([byte(at), byte(at + 1), byte(at + 2), byte(at + 3)]);
    let bl = insn & 0xfc00_0000 == 0x9400_0000;
    let blr = insn & 0xffff_fc1f == 0xd63f_0000;
    let blra = insn & 0xfeff_f800 == 0xd63f_0800;
    bl || blr || blra
}
