//! Helpers for the tests built for Windows and run under Wine (README, "Windows"): compiling C
//! and C++ with mingw-w64 at test time, linking the native `.exe`, and packing modules for
//! Windows with the library set a Windows module needs (docs/LINKING.md, "COFF objects").
//! Starting mingw-w64's compilers, Linux programs, from the test and crossing paths between
//! Windows and Unix is `smf-test-support`'s (its `wine` module says how).
#![allow(dead_code)]

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Output;

pub use smf_test_support::wine::windows_path;
use windows_sys::Win32::System::Diagnostics::Debug::{
    RtlCaptureStackBackTrace, RtlLookupFunctionEntry,
};

/// mingw-w64's C and C++ compilers, by their Unix paths: the builds with Win32
/// threads, whose libstdc++ and libgcc need no winpthreads.
#[derive(Debug, Clone)]
pub struct Mingw(pub smf_test_support::Mingw);

impl Deref for Mingw {
    type Target = smf_test_support::Mingw;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// mingw-w64, if installed (`smf_test_support::mingw`: skipped without it, a failure with
/// `SMF_REQUIRE_CROSS` set).
pub fn mingw() -> Option<Mingw> {
    smf_test_support::mingw("-win32").map(Mingw)
}

/// A fresh directory that both the test and the Unix compilers can reach, removed on drop.
pub fn work_dir() -> tempfile::TempDir {
    let base = windows_path(env!("CARGO_TARGET_TMPDIR")).join("windows-programs");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix("work")
        .tempdir_in(base)
        .unwrap()
}

/// The directory of a fixture under `tests/programs`, as a Windows path.
pub fn program_dir(name: &str) -> PathBuf {
    windows_path(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("programs")
        .join(name)
}

impl Mingw {
    /// Packs `objects` into the Windows module `output` with `smf pack` (this platform's
    /// `smf.exe`), `extra` arguments first, then the objects and
    /// [`smf_test_support::Mingw::pack_libraries`].
    pub fn pack(&self, objects: &[PathBuf], output: &Path, cxx: bool, extra: &[&str]) -> Output {
        let mut command = super::smf();
        command
            .arg("pack")
            .arg("-o")
            .arg(output)
            .args(extra)
            .args(objects)
            .args(self.pack_libraries(cxx));
        super::check(command)
    }
}

// The system unwinder's view of module code (`RtlLookupFunctionEntry`,
// `RtlCaptureStackBackTrace`), and host callbacks that walk the stack or panic from under
// module frames.

/// The image offset of the start of the function-table entry the system unwinder finds for
/// `address`, and the image base it reports; `None` if no entry covers it.
pub fn function_entry(address: usize) -> Option<(usize, usize)> {
    let mut base = 0u64;
    // SAFETY: RtlLookupFunctionEntry only reads the system's lists of function tables; the
    // address is not dereferenced.
    let entry = unsafe { RtlLookupFunctionEntry(address as u64, &mut base, std::ptr::null_mut()) };
    // SAFETY: a non-null entry points into a registered table, readable while registered.
    (!entry.is_null()).then(|| (unsafe { (*entry).BeginAddress } as usize, base as usize))
}

pub type Callback = extern "C-unwind" fn(i32) -> i32;
pub type Outer = extern "C-unwind" fn(Callback, i32) -> i32;

std::thread_local! {
    pub static FRAMES: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Records the return addresses of the stack as the system unwinder walks it.
pub extern "C-unwind" fn walk(x: i32) -> i32 {
    let mut frames = [std::ptr::null_mut(); 64];
    // SAFETY: the buffer has room for the 64 frames asked for.
    let n = unsafe { RtlCaptureStackBackTrace(0, 64, frames.as_mut_ptr(), std::ptr::null_mut()) };
    FRAMES.with(|f| *f.borrow_mut() = frames[..n as usize].iter().map(|&p| p as usize).collect());
    x * 10
}

pub extern "C-unwind" fn panics(x: i32) -> i32 {
    std::panic::panic_any(format!("panic from the callback, x = {x}"));
}

/// The image (program or DLL) containing `address`, by its handle.
pub fn image_of(address: usize) -> usize {
    use windows_sys::Win32::System::LibraryLoader::{
        GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS, GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
        GetModuleHandleExW,
    };
    let mut module = std::ptr::null_mut();
    // SAFETY: FROM_ADDRESS only looks the address up; no reference is taken.
    unsafe {
        GetModuleHandleExW(
            GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
            address as *const u16,
            &mut module,
        )
    };
    module as usize
}
