//! Windows implementation of the platform layer (VirtualAlloc, VirtualProtect, VirtualFree;
//! LoadLibraryExW and GetProcAddress for native libraries).
//!
//! Module files are copied, not mapped: `MAPS_FILES` is false, so the loader reads each file
//! into memory and copies its payloads into the reservation (`docs/RUNTIME.md`, *Windows*).
//! A private file view cannot be placed inside a reservation made by `VirtualAlloc`; that
//! needs placeholders (`VirtualAlloc2`, `MapViewOfFile3`), which Wine 8 does not implement.

use std::ffi::c_void;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::ptr::NonNull;

use windows_sys::Win32::Foundation::HMODULE;
use windows_sys::Win32::System::Diagnostics::Debug::FlushInstructionCache;
use windows_sys::Win32::System::LibraryLoader::{
    GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS, GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
    GetModuleFileNameW, GetModuleHandleExW, GetProcAddress,
};
use windows_sys::Win32::System::Memory::{
    MEM_COMMIT, MEM_IMAGE, MEM_RELEASE, MEM_RESERVE, MEMORY_BASIC_INFORMATION, PAGE_EXECUTE,
    PAGE_EXECUTE_READ, PAGE_EXECUTE_READWRITE, PAGE_EXECUTE_WRITECOPY, PAGE_NOACCESS,
    PAGE_PROTECTION_FLAGS, PAGE_READONLY, PAGE_READWRITE, VirtualAlloc, VirtualFree,
    VirtualProtect, VirtualQuery,
};
use windows_sys::Win32::System::ProcessStatus::K32EnumProcessModules;
use windows_sys::Win32::System::Threading::GetCurrentProcess;

use super::Protection;

pub(crate) mod crash;
mod entry;
mod exit;
pub(crate) mod tls_callbacks;
pub(crate) mod unwind;

pub(crate) use entry::call_main;
pub(crate) use exit::{at_exit, call_plain, cxa_atexit, cxa_finalize, exit};

#[cfg(not(target_arch = "x86_64"))]
compile_error!("simple-loader supports Windows on x86-64 only so far");

/// Size of a page on x86-64 Windows.
pub(crate) const PAGE_SIZE: usize = 4096;

/// Module files are read and copied (see the module documentation).
pub(crate) const MAPS_FILES: bool = false;

/// The system's page size.
pub(crate) fn host_page_size() -> u64 {
    use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, SYSTEM_INFO};
    // SAFETY: GetSystemInfo fills the structure it is given and cannot fail.
    let info = unsafe {
        let mut info: SYSTEM_INFO = std::mem::zeroed();
        GetSystemInfo(&mut info);
        info
    };
    u64::from(info.dwPageSize)
}

/// A contiguous range of address space owned by one module: reserved inaccessible by
/// [`Reservation::new`] (`VirtualAlloc(MEM_RESERVE)`), its pages committed and given their
/// protection by [`Reservation::protect`]. Released exactly once, on drop.
#[derive(Debug)]
pub(crate) struct Reservation {
    pub(super) base: NonNull<u8>,
    pub(super) len: usize,
}

// SAFETY: a Reservation is an owned address range like a Box<[u8]>; it has no thread
// affinity, and all writes through it go through `unsafe` methods whose callers guarantee
// exclusive access.
unsafe impl Send for Reservation {}
// SAFETY: shared references only read the base address and length.
unsafe impl Sync for Reservation {}

impl Reservation {
    /// Reserves `len` bytes (rounded up to whole pages), inaccessible and uncommitted until
    /// protected. Windows reserves whole allocation-granularity blocks (64 KiB), so the
    /// address is 64 KiB-aligned.
    pub(crate) fn new(len: usize) -> io::Result<Reservation> {
        let len = len
            .max(PAGE_SIZE)
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        // SAFETY: a new reservation at an address the system chooses aliases nothing.
        let base = unsafe { VirtualAlloc(std::ptr::null(), len, MEM_RESERVE, PAGE_NOACCESS) };
        let base = NonNull::new(base.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Reservation { base, len })
    }

    /// Mapping module files is not done on Windows (`MAPS_FILES`); the loader never asks.
    pub(crate) fn map_file_anywhere(
        _len: usize,
        _file: &File,
        _file_offset: u64,
        _protection: Protection,
    ) -> io::Result<Reservation> {
        Err(not_mapped())
    }

    /// As [`Reservation::map_file_anywhere`].
    pub(crate) fn from_file_map(
        _map: FileMap,
        _len: usize,
        _added: Option<Protection>,
    ) -> io::Result<Reservation> {
        Err(not_mapped())
    }

    /// As [`Reservation::map_file_anywhere`].
    pub(crate) fn map_file(
        &self,
        _offset: usize,
        _len: usize,
        _file: &File,
        _file_offset: u64,
        _protection: Protection,
    ) -> io::Result<()> {
        Err(not_mapped())
    }

    /// Nothing to populate: the pages of a copied image are written as they are committed.
    pub(crate) fn populate_for_write(&self, _range: Range<usize>) {}

    /// Not known on Windows (there is no `mincore`): the caller counts every page as written.
    pub(crate) fn resident(&self, _range: Range<usize>) -> io::Result<Vec<bool>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "page residency is not queried on Windows",
        ))
    }

    /// Commits a page-aligned `range` of the reservation (if it is not yet) and gives it
    /// `protection`. Committing takes the final protection directly (a fresh page reads as
    /// zeros), and `VirtualProtect` then sets it on pages committed earlier.
    pub(crate) fn protect(&self, range: Range<usize>, protection: Protection) -> io::Result<()> {
        if range.start % PAGE_SIZE != 0
            || range.end % PAGE_SIZE != 0
            || range.start > range.end
            || range.end > self.len
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("range {range:?} is not whole pages of the reservation"),
            ));
        }
        if range.is_empty() {
            return Ok(());
        }
        let flags = page_protection(protection);
        // SAFETY: the range lies inside our own reservation (checked above). Committing
        // pages that already are keeps their contents. Changing protection cannot
        // invalidate Rust references: the loader holds none into module pages.
        unsafe {
            let at = self.base.as_ptr().add(range.start).cast::<c_void>();
            if VirtualAlloc(at, range.len(), MEM_COMMIT, flags).is_null() {
                return Err(io::Error::last_os_error());
            }
            let mut old: PAGE_PROTECTION_FLAGS = 0;
            if VirtualProtect(at, range.len(), flags, &mut old) == 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Makes code written through this reservation at `range` visible to instruction fetch:
    /// `FlushInstructionCache`, which Windows requires after writing code, then the
    /// architecture's own step (`sys::arch`).
    pub(crate) fn flush_instruction_cache(&self, range: Range<usize>) {
        let base = self.base.as_ptr() as usize;
        let end = range.end.min(self.len);
        let start = range.start.min(end);
        // SAFETY: flushing a range of our own reservation changes no memory.
        unsafe {
            FlushInstructionCache(
                GetCurrentProcess(),
                (base + start) as *const c_void,
                end - start,
            )
        };
        super::arch::flush_instruction_cache(base + start..base + end);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // SAFETY: `base` is the start of our own reservation, released only here; releasing
        // cannot fail for it, and Drop must not panic.
        unsafe { VirtualFree(self.base.as_ptr().cast(), 0, MEM_RELEASE) };
    }
}

fn not_mapped() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "module files are copied, not mapped, on Windows",
    )
}

fn page_protection(protection: Protection) -> PAGE_PROTECTION_FLAGS {
    match protection {
        Protection::Read => PAGE_READONLY,
        Protection::ReadWrite => PAGE_READWRITE,
        Protection::ReadExecute => PAGE_EXECUTE_READ,
    }
}

/// A mapping of a module file: never made on Windows (`MAPS_FILES` is false, and [`FileMap::new`]
/// refuses), so no value of it exists.
#[derive(Debug)]
pub(crate) struct FileMap {
    _never: (),
}

impl FileMap {
    pub(crate) fn new(_file: &File, _len: usize, _populate: bool) -> io::Result<FileMap> {
        Err(not_mapped())
    }

    pub(crate) fn with_room(_file: &File, _len: usize, _room: usize) -> io::Result<FileMap> {
        Err(not_mapped())
    }

    pub(crate) fn split(self, _at: usize) -> Result<(FileMap, FileMap), FileMap> {
        Err(self)
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &[]
    }
}

/// Reads bytes of `file` from `offset` into `buf`.
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// Opens `path` for reading if it is a regular file; anything else (a directory, a device,
/// a pipe) is refused with an error naming what it is.
pub(crate) fn open_regular(path: &std::path::Path) -> io::Result<File> {
    let file = File::open(path)?;
    let file_type = file.metadata()?.file_type();
    if !file_type.is_file() {
        let (kind, what) = if file_type.is_dir() {
            (io::ErrorKind::IsADirectory, "a directory")
        } else {
            (io::ErrorKind::InvalidInput, "not a disk file")
        };
        return Err(io::Error::new(kind, format!("not a regular file ({what})")));
    }
    Ok(file)
}

/// Opens `path` as [`open_regular`] does, and its size.
pub(crate) fn open_module(path: &std::path::Path) -> io::Result<(File, u64)> {
    let file = open_regular(path)?;
    let len = file.metadata()?.len();
    Ok((file, len))
}

/// An open native library (a DLL); freed once, on drop.
pub(crate) type NativeLibrary = libloading::os::windows::Library;

/// The module handle `GetProcAddress` takes, valid while its [`NativeLibrary`] is open.
pub(crate) type NativeHandle = isize;

/// Loads the DLL `name` with `LoadLibraryExW` and the system's default search order.
///
/// # Safety
/// Loading a DLL runs its initialisers (`DllMain`, constructors).
pub(crate) unsafe fn open_library(
    name: &str,
) -> Result<(NativeLibrary, NativeHandle), libloading::Error> {
    // SAFETY: the caller accepts running the library's initialisers.
    let opened = unsafe { NativeLibrary::load_with_flags(name, 0) }?;
    let handle = opened.into_raw();
    // SAFETY: `handle` came from `into_raw` on an open library; it goes back into one
    // `Library`, which frees it once.
    Ok((unsafe { NativeLibrary::from_raw(handle) }, handle))
}

/// What native code the process has loaded, for the imports no module or needed DLL defines:
/// its modules as `EnumProcessModules` lists them when the load starts, the program first.
/// Windows has no global symbol scope; this is its counterpart of Linux's. A DLL another
/// thread frees during the load is searched no further.
pub(crate) struct ProcessScope(Vec<HMODULE>);

impl ProcessScope {
    pub(crate) fn new() -> ProcessScope {
        let mut modules: Vec<HMODULE> = vec![std::ptr::null_mut(); 256];
        loop {
            let mut needed = 0u32;
            let bytes = u32::try_from(modules.len() * size_of::<HMODULE>()).unwrap_or(u32::MAX);
            // SAFETY: `modules` has room for `bytes` bytes of handles; the call writes at most
            // that many and reports how many it needed.
            let ok = unsafe {
                K32EnumProcessModules(
                    GetCurrentProcess(),
                    modules.as_mut_ptr(),
                    bytes,
                    &mut needed,
                )
            };
            if ok == 0 {
                return ProcessScope(Vec::new());
            }
            let count = needed as usize / size_of::<HMODULE>();
            if count <= modules.len() {
                modules.truncate(count);
                return ProcessScope(modules);
            }
            modules.resize(count, std::ptr::null_mut());
        }
    }

    /// The address the first listed module exporting `name` gives it, if any.
    pub(crate) fn lookup(&self, name: &str) -> Option<usize> {
        self.0.iter().find_map(|&module| {
            // SAFETY: a module listed by EnumProcessModules; GetProcAddress fails cleanly
            // (null) for a handle that is no longer loaded.
            unsafe { symbol_address(module as NativeHandle, name) }
        })
    }
}

/// The address `GetProcAddress` gives for `name` in the module `handle`, if not null. Names
/// up to 255 bytes are terminated on the stack.
///
/// # Safety
/// `handle` must be the handle of a loaded module, loaded until this returns.
pub(crate) unsafe fn symbol_address(handle: NativeHandle, name: &str) -> Option<usize> {
    // A name with a NUL inside would be cut short there; no such symbol can be meant.
    if name.as_bytes().contains(&0) {
        return None;
    }
    let mut stack = [0u8; 256];
    let heap;
    let terminated: &[u8] = if name.len() < stack.len() {
        stack[..name.len()].copy_from_slice(name.as_bytes());
        &stack[..=name.len()]
    } else {
        heap = std::ffi::CString::new(name).ok()?;
        heap.as_bytes_with_nul()
    };
    // SAFETY: `handle` is a loaded module (caller's contract) and `terminated` is
    // NUL-terminated; the result is only read as an address.
    let address = unsafe { GetProcAddress(handle as HMODULE, terminated.as_ptr()) };
    address.map(|f| f as usize)
}

/// What an address a native library resolved is. Windows export tables do not say whether
/// an export is code or data, so the loader only knows by where it lies
/// ([`executable_segments`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NativeKind {
    /// Never found on Windows (kept for the generic checks).
    #[allow(dead_code)]
    Code,
    /// Never found on Windows (kept for the generic checks).
    #[allow(dead_code)]
    Data,
    /// What every address is here.
    Unknown,
}

/// [`NativeKind::Unknown`], and the path of the DLL or program containing `address`.
pub(crate) fn native_symbol(address: usize) -> (NativeKind, String) {
    let mut module: HMODULE = std::ptr::null_mut();
    // SAFETY: FROM_ADDRESS takes `address` as an address inside a module (it is not
    // dereferenced) and UNCHANGED_REFCOUNT takes no reference that would need freeing.
    let found = unsafe {
        GetModuleHandleExW(
            GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
            address as *const u16,
            &mut module,
        )
    };
    if found == 0 {
        return (NativeKind::Unknown, String::new());
    }
    let mut path = [0u16; 1024];
    // SAFETY: `path` has room for the length passed; the module is loaded (just found).
    let len = unsafe { GetModuleFileNameW(module, path.as_mut_ptr(), path.len() as u32) };
    let path = String::from_utf16_lossy(&path[..(len as usize).min(path.len())]);
    (NativeKind::Unknown, path)
}

/// A count that changes whenever the system loads or unloads a DLL: none is kept here, so
/// what the process scope resolved is looked up again at every load.
pub(crate) fn loaded_objects_generation() -> Option<(u64, u64)> {
    None
}

/// The executable pages of every image (program or DLL) the system has mapped, sorted by
/// start, found by walking the address space with `VirtualQuery`.
pub(crate) fn executable_segments() -> Vec<Range<usize>> {
    const EXECUTABLE: PAGE_PROTECTION_FLAGS =
        PAGE_EXECUTE | PAGE_EXECUTE_READ | PAGE_EXECUTE_READWRITE | PAGE_EXECUTE_WRITECOPY;
    let mut segments: Vec<Range<usize>> = Vec::new();
    let mut at = 0usize;
    loop {
        // SAFETY: a zeroed MEMORY_BASIC_INFORMATION is a valid out-parameter.
        let mut info: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: VirtualQuery only describes the region containing `at`, whatever it is.
        let written = unsafe {
            VirtualQuery(
                at as *const c_void,
                &mut info,
                size_of::<MEMORY_BASIC_INFORMATION>(),
            )
        };
        if written == 0 || info.RegionSize == 0 {
            break;
        }
        let start = info.BaseAddress as usize;
        let end = start.saturating_add(info.RegionSize);
        if info.State == MEM_COMMIT && info.Type == MEM_IMAGE && info.Protect & EXECUTABLE != 0 {
            match segments.last_mut() {
                Some(last) if last.end == start => last.end = end,
                _ => segments.push(start..end),
            }
        }
        if end <= at {
            break;
        }
        at = end;
    }
    segments
}

/// A fiber-local slot (`FlsAlloc`) whose non-null values a destructor receives when their
/// thread exits. There is one per process, for the module thread-local blocks (`tls`).
pub(crate) struct ThreadKey(u32);

/// The destructor of the process's one [`ThreadKey`]; `FlsAlloc` callbacks take no context.
static DESTRUCTOR: std::sync::OnceLock<extern "C" fn(*mut c_void)> = std::sync::OnceLock::new();

unsafe extern "system" fn run_destructor(value: *const c_void) {
    if let Some(destructor) = DESTRUCTOR.get() {
        destructor(value.cast_mut());
    }
}

impl ThreadKey {
    /// The key, with `destructor` for its values; only one key may be made.
    pub(crate) fn new(destructor: extern "C" fn(*mut c_void)) -> io::Result<ThreadKey> {
        use windows_sys::Win32::System::Threading::{FLS_OUT_OF_INDEXES, FlsAlloc};
        if DESTRUCTOR.set(destructor).is_err() {
            return Err(io::Error::other("only one thread key is made per process"));
        }
        // SAFETY: the callback has the signature FlsAlloc requires and lives forever.
        let index = unsafe { FlsAlloc(Some(run_destructor)) };
        if index == FLS_OUT_OF_INDEXES {
            return Err(io::Error::last_os_error());
        }
        Ok(ThreadKey(index))
    }

    /// The calling thread's value, null if none.
    pub(crate) fn get(&self) -> *mut c_void {
        // SAFETY: reading this thread's value of a valid slot.
        unsafe { windows_sys::Win32::System::Threading::FlsGetValue(self.0) }
    }

    /// Sets the calling thread's value.
    pub(crate) fn set(&self, value: *mut c_void) -> io::Result<()> {
        // SAFETY: storing this thread's value of a valid slot.
        match unsafe { windows_sys::Win32::System::Threading::FlsSetValue(self.0, value) } {
            0 => Err(io::Error::last_os_error()),
            _ => Ok(()),
        }
    }
}

/// Writes `bytes` to the standard error handle in one call, bypassing Rust's `stderr` (for
/// fatal messages and the crash handler).
pub(crate) fn write_stderr(bytes: &[u8]) {
    use windows_sys::Win32::Storage::FileSystem::WriteFile;
    use windows_sys::Win32::System::Console::{GetStdHandle, STD_ERROR_HANDLE};
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    let mut written = 0u32;
    // SAFETY: writing an initialised buffer of at most its length to the process's standard
    // error handle; a missing handle makes WriteFile fail, which is ignored.
    unsafe {
        WriteFile(
            GetStdHandle(STD_ERROR_HANDLE),
            bytes.as_ptr(),
            len,
            &mut written,
            std::ptr::null_mut(),
        )
    };
}
