//! Machine code for the modules the tests build with the format crate's writer, in the
//! instruction set the tests run on.
#![allow(dead_code)]

use smf_format::Arch;

/// The architecture this loader runs on.
pub const HOST: Arch = simple_loader::HOST_ARCH.unwrap();

/// One it does not run on.
pub const OTHER: Arch = match HOST {
    Arch::X86_64 => Arch::Aarch64,
    _ => Arch::X86_64,
};

/// Bytes of [`return_constant`]'s function.
#[cfg(target_arch = "x86_64")]
pub const CODE_LEN: usize = 6;
#[cfg(target_arch = "aarch64")]
pub const CODE_LEN: usize = 8;

/// A function returning `value`: `mov eax, value; ret`.
#[cfg(target_arch = "x86_64")]
pub const fn return_constant(value: u16) -> [u8; CODE_LEN] {
    let v = value.to_le_bytes();
    [0xb8, v[0], v[1], 0, 0, 0xc3]
}

/// A function returning `value`: `mov w0, #value; ret`.
#[cfg(target_arch = "aarch64")]
pub const fn return_constant(value: u16) -> [u8; CODE_LEN] {
    let mov = (0x5280_0000u32 | ((value as u32) << 5)).to_le_bytes();
    [mov[0], mov[1], mov[2], mov[3], 0xc0, 0x03, 0x5f, 0xd6]
}

/// A function that returns the word at `target`, for code at `at`: `mov rax, [rip + disp];
/// ret`.
#[cfg(target_arch = "x86_64")]
pub fn load_word(at: u64, target: u64) -> Vec<u8> {
    let disp = i32::try_from(target as i64 - (at as i64 + 7)).unwrap();
    let mut code = vec![0x48, 0x8b, 0x05];
    code.extend_from_slice(&disp.to_le_bytes());
    code.push(0xc3);
    code
}

/// A function that returns the word at `target`, for code at `at`: `ldr x0, target; ret`.
#[cfg(target_arch = "aarch64")]
pub fn load_word(at: u64, target: u64) -> Vec<u8> {
    let words = (target as i64 - at as i64) / 4;
    assert!(words.abs() < 1 << 18 && (target as i64 - at as i64) % 4 == 0);
    let ldr = 0x5800_0000 | ((words as u32 & 0x7ffff) << 5);
    [ldr, 0xd65f_03c0u32]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
}

/// Whether the tests run under an emulator (`SMF_TEST_RUNNER`, which `.cargo/config.toml`
/// sets for aarch64 tests under qemu); then prints `skipped: <reason>` where it always shows
/// (libtest captures only `print!`) and the caller returns. For what qemu-user cannot show:
/// its `/proc/self/maps` gives each host mapping the protection of its first page (code
/// and read-only data mapped side by side from one file read as one `r-x` range), and its
/// resident memory grows with every new page of code it translates.
pub fn skip_under_emulator(reason: &str) -> bool {
    if std::env::var_os("SMF_TEST_RUNNER").is_none() {
        return false;
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {reason}");
    true
}

/// The reason tests that read protections from `/proc/self/maps` skip under qemu-user.
pub const QEMU_MAPS: &str = "qemu-user's /proc/self/maps reports the protection of a host mapping's first page for all of it";

/// Replaces the file at `path` as `smf pack` does: a new file renamed over it (a running
/// version mapped from the file keeps the file it was mapped from).
pub fn replace(path: &std::path::Path, bytes: &[u8]) {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).unwrap();
    std::fs::rename(&partial, path).unwrap();
}
