//! x86-64.

use std::ops::Range;

use object::elf;

#[cfg(unix)]
use super::Interrupted;

pub(crate) const ELF_MACHINE: elf::Machine = elf::EM_X86_64;
/// The largest page size of the architecture's kernels (4 KiB, the psABI's and GNU ld's): the
/// alignment of the loadable segments of ELF objects the loader writes for the dynamic linker.
#[cfg(unix)]
pub(crate) const MAX_PAGE_SIZE: u64 = 0x1000;
#[cfg(unix)]
pub(crate) const TPOFF_RELOCATION: elf::RelocationType = elf::R_X86_64_TPOFF64;

/// `jmp qword ptr [rip + distance - 6]` (the displacement counts from the end of the 6-byte
/// instruction), then two `int3`.
pub(crate) const fn slot_trampoline(distance: usize) -> [u8; 8] {
    assert!(distance >= 6 && distance - 6 <= i32::MAX as usize);
    let d = ((distance - 6) as u32).to_le_bytes();
    [0xff, 0x25, d[0], d[1], d[2], d[3], 0xcc, 0xcc]
}

/// x86-64 keeps instruction fetch coherent with stores, even across cores (a cross-modifying
/// thread only needs the code to be published, which the protection change that makes it
/// executable does), so only the compiler must be kept from moving stores past this point.
pub(crate) fn flush_instruction_cache(_range: Range<usize>) {
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// `%fs:0` holds the thread pointer's own value on x86-64 Linux (TLS variant II).
#[cfg(unix)]
pub(crate) fn thread_pointer() -> usize {
    let tp: usize;
    // SAFETY: reads one word at %fs:0, which the C library keeps pointing at itself.
    unsafe {
        std::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp, options(nostack, readonly, preserves_flags));
    }
    tp
}

// The `__tls_get_addr` entry modules call: it aligns the stack before calling
// `tls_get_addr`, as glibc's does, because code compiled by old compilers calls
// `__tls_get_addr` with a misaligned one.
#[cfg(not(windows))]
std::arch::global_asm!(
    ".pushsection .text.smf_loader_tls_get_addr,\"ax\",@progbits",
    ".p2align 4",
    ".globl smf_loader_tls_get_addr",
    ".hidden smf_loader_tls_get_addr",
    ".type smf_loader_tls_get_addr,@function",
    "smf_loader_tls_get_addr:",
    ".cfi_startproc",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "mov rbp, rsp",
    ".cfi_def_cfa_register rbp",
    "and rsp, -16",
    "call {inner}",
    "mov rsp, rbp",
    "pop rbp",
    ".cfi_def_cfa rsp, 8",
    "ret",
    ".cfi_endproc",
    ".size smf_loader_tls_get_addr, . - smf_loader_tls_get_addr",
    ".popsection",
    inner = sym crate::tls::tls_get_addr,
);

// The function `tls_descriptor` relocations store in the first word of a TLS descriptor.
// Module code calls it with the descriptor's address in rax and expects, in rax, the
// variable's offset from the thread pointer, every other register and the flags preserved
// (the psABI's TLS descriptor convention). For a static block that offset is the
// descriptor's second word, which a `tp_offset` relocation set.
#[cfg(not(windows))]
std::arch::global_asm!(
    ".pushsection .text.smf_loader_tls_descriptor,\"ax\",@progbits",
    ".p2align 4",
    ".globl smf_loader_tls_descriptor",
    ".hidden smf_loader_tls_descriptor",
    ".type smf_loader_tls_descriptor,@function",
    "smf_loader_tls_descriptor:",
    ".cfi_startproc",
    "mov rax, qword ptr [rax + 8]",
    "ret",
    ".cfi_endproc",
    ".size smf_loader_tls_descriptor, . - smf_loader_tls_descriptor",
    ".popsection",
);

// The same two entry points in a COFF object. Windows modules get no thread-local sections
// (mingw compiles `__thread` to emulated TLS, ordinary calls to `__emutls_get_address`), so
// nothing calls them there; they exist so that the generic code links. The argument is in
// rcx, and the callee may use 32 bytes of shadow space above the return address.
#[cfg(windows)]
std::arch::global_asm!(
    ".section .text$smf_loader_tls_get_addr,\"xr\"",
    ".globl smf_loader_tls_get_addr",
    ".globl smf_loader_tls_descriptor",
    ".p2align 4",
    "smf_loader_tls_get_addr:",
    "push rbp",
    "mov rbp, rsp",
    "and rsp, -16",
    "sub rsp, 32",
    "call {inner}",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
    ".p2align 4",
    "smf_loader_tls_descriptor:",
    "mov rax, qword ptr [rax + 8]",
    "ret",
    ".text",
    inner = sym crate::tls::tls_get_addr,
);

/// Calls an indirect function's resolver. glibc calls x86-64 resolvers with no arguments
/// (they read the CPU's features themselves, through `__builtin_cpu_supports`).
///
/// # Safety
/// `resolver` must be the address of executable code that is a resolver.
pub(crate) unsafe fn call_ifunc_resolver(resolver: usize) -> u64 {
    // SAFETY: the caller guarantees `resolver` is a resolver, `u64 (void)` in C.
    unsafe {
        let resolver = std::mem::transmute::<usize, unsafe extern "C" fn() -> u64>(resolver);
        resolver()
    }
}

/// The program counter and stack pointer of the interrupted code; x86-64 calls push their
/// return address, so there is no link register.
///
/// # Safety
/// `context` must be null or the `ucontext_t` the kernel passed to an `SA_SIGINFO` handler.
#[cfg(unix)]
pub(crate) unsafe fn interrupted_registers(context: *mut libc::c_void) -> Option<Interrupted> {
    if context.is_null() {
        return None;
    }
    // SAFETY: the caller passes the kernel's ucontext_t.
    let context = unsafe { &*context.cast::<libc::ucontext_t>() };
    let registers = &context.uc_mcontext.gregs;
    Some(Interrupted {
        pc: registers[libc::REG_RIP as usize] as usize,
        sp: registers[libc::REG_RSP as usize] as usize,
        link: None,
    })
}

/// Whether the code in `start..address` ends with a call instruction: `call rel32` (`e8`), or
/// an indirect `call` (`ff /2`, two to seven bytes with prefixes and displacement). `byte`
/// reads code bytes in that range.
pub(crate) fn follows_call(address: usize, start: usize, byte: impl Fn(usize) -> u8) -> bool {
    let direct = address - start >= 5 && byte(address - 5) == 0xe8;
    let indirect = (2..=7).any(|length| {
        address - start >= length
            && byte(address - length) == 0xff
            && (byte(address - length + 1) >> 3) & 7 == 2
    });
    direct || indirect
}
