//! The system loader, called directly (`dlopen`, `dlsym`, `dlclose`): no wrapper that might
//! add work to one side only.

use std::ffi::{CStr, CString, c_void};
use std::path::Path;

/// A shared library opened with `dlopen`; closed by [`Library::close`] or on drop.
#[derive(Debug)]
pub struct Library {
    handle: *mut c_void,
}

impl Library {
    /// `dlopen(path, RTLD_NOW | RTLD_LOCAL)`.
    pub fn open(path: &CStr) -> Result<Library, String> {
        // SAFETY: `path` is NUL-terminated; the libraries opened here are the benchmark's
        // own generated C, whose initialisers do nothing.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(last_error());
        }
        Ok(Library { handle })
    }

    /// `dlsym(handle, name)`; null if not found.
    pub fn symbol(&self, name: &CStr) -> *mut c_void {
        // SAFETY: the handle is open (it is closed only by consuming `self`); the result is
        // only used as an address.
        unsafe { libc::dlsym(self.handle, name.as_ptr()) }
    }

    /// `dlclose`.
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        // SAFETY: the handle came from dlopen and is closed exactly once, here; no address
        // obtained from it is used after its Library is gone (the benchmark drops them first).
        unsafe { libc::dlclose(self.handle) };
    }
}

/// Whether the system loader still has `path` mapped: `dlopen(RTLD_NOLOAD)` succeeds only for
/// a library already loaded. Used to check that each measured `dlopen` maps the file anew.
pub fn is_loaded(path: &CStr) -> bool {
    // SAFETY: RTLD_NOLOAD never maps or initialises anything.
    let handle = unsafe {
        libc::dlopen(
            path.as_ptr(),
            libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_NOLOAD,
        )
    };
    if handle.is_null() {
        return false;
    }
    // SAFETY: the handle came from the dlopen above, which took a reference; give it back.
    unsafe { libc::dlclose(handle) };
    true
}

fn last_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated message valid until the next dl call.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        return "unknown dlopen error".into();
    }
    // SAFETY: non-null, NUL-terminated (above).
    unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned()
}

pub fn c_path(path: &Path) -> CString {
    use std::os::unix::ffi::OsStrExt;
    // Paths the benchmark makes itself, under a temporary directory: no NUL bytes.
    CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}

/// The page-rounded address ranges of the `PT_LOAD` segments of an ELF64 shared library
/// (relative to its load address): what the system loader maps as the library's payload.
fn load_segments(elf: &[u8]) -> Vec<std::ops::Range<u64>> {
    let read = |offset: usize, len: usize| -> u64 {
        let mut value = 0u64;
        for (i, byte) in elf
            .get(offset..offset + len)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            value |= u64::from(*byte) << (8 * i);
        }
        value
    };
    let (phoff, phentsize, phnum) = (
        read(0x20, 8) as usize,
        read(0x36, 2) as usize,
        read(0x38, 2),
    );
    (0..phnum as usize)
        .map(|i| phoff + i * phentsize)
        .filter(|&ph| read(ph, 4) == 1) // PT_LOAD
        .map(|ph| {
            let (vaddr, memsz) = (read(ph + 0x10, 8), read(ph + 0x28, 8));
            (vaddr & !0xfff)..(vaddr + memsz).next_multiple_of(0x1000)
        })
        .collect()
}

/// Page-rounded sizes of the `PT_LOAD` segments of an ELF64 shared library: the bytes the
/// system loader maps as the library's payload.
pub fn load_segment_bytes(elf: &[u8]) -> u64 {
    load_segments(elf).iter().map(|s| s.end - s.start).sum()
}

/// The length of the address range the system loader reserves for an ELF64 shared library:
/// from its first `PT_LOAD` segment's first page to its last one's end.
pub fn load_span(elf: &[u8]) -> u64 {
    let segments = load_segments(elf);
    let start = segments.iter().map(|s| s.start).min().unwrap_or(0);
    let end = segments.iter().map(|s| s.end).max().unwrap_or(0);
    end - start
}
