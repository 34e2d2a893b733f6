//! Unix implementation of the platform layer (mmap, mprotect, munmap).

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Protection;

/// Size of a page on every target this file supports so far.
pub(crate) const PAGE_SIZE: usize = 4096;

/// Module files are mapped from the page cache rather than copied (zero-copy loading).
pub(crate) const MAPS_FILES: bool = true;

/// The kernel's page size.
pub(crate) fn host_page_size() -> u64 {
    // SAFETY: sysconf only reads a configuration value; _SC_PAGESIZE is defined everywhere.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(smf_format::raw::PAGE_SIZE)
}

/// A contiguous range of address space owned by one module: created inaccessible
/// ([`Reservation::new`]), as one mapping of a file ([`Reservation::map_file_anywhere`]),
/// or from the payload part of a file's read-only mapping ([`Reservation::from_file_map`]);
/// its pages get their protection through [`Reservation::protect`]. Unmapped exactly once,
/// on drop, or, made from the payloads of a split file mapping, with the head of that mapping
/// when the last of the two goes ([`SharedPages`]).
#[derive(Debug)]
pub(crate) struct Reservation {
    pub(super) base: NonNull<u8>,
    pub(super) len: usize,
    /// The split file mapping whose end this reservation is, unmapped in one call with the
    /// head it begins with; `None` when the reservation is a mapping of its own.
    shared: Option<Arc<SharedPages>>,
}

// SAFETY: a Reservation is an owned address range like a Box<[u8]>; it has no thread
// affinity, and all writes through it go through `&mut self` or `unsafe` methods whose
// callers guarantee exclusive access.
unsafe impl Send for Reservation {}
// SAFETY: shared references only read the base address and length.
unsafe impl Sync for Reservation {}

impl Reservation {
    /// Reserves `len` bytes (rounded up to whole pages), inaccessible until protected.
    pub(crate) fn new(len: usize) -> io::Result<Reservation> {
        let len = whole_pages(len)?;
        let base = map_anywhere(len, libc::PROT_NONE, None, false)?;
        Ok(Reservation {
            base,
            len,
            shared: None,
        })
    }

    /// Maps `len` bytes (rounded up to whole pages) of `file` from the page-aligned
    /// `file_offset` at an address the kernel chooses, private (copy on write) and with
    /// `protection`: a reservation whose pages all come from the file. Pages past the end of
    /// the file read as zeros up to the end of its last page; the caller makes sure no page
    /// lies wholly past it.
    pub(crate) fn map_file_anywhere(
        len: usize,
        file: &File,
        file_offset: u64,
        protection: Protection,
    ) -> io::Result<Reservation> {
        let len = whole_pages(len)?;
        let file_offset = libc::off_t::try_from(file_offset)
            .ok()
            .filter(|o| *o as u64 % PAGE_SIZE as u64 == 0)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("file offset {file_offset:#x} is not page-aligned"),
                )
            })?;
        let base = map_anywhere(len, prot(protection), Some((file, file_offset)), false)?;
        Ok(Reservation {
            base,
            len,
            shared: None,
        })
    }

    /// Takes over `map`, a read-only mapping of file pages, as the start of a reservation of
    /// `len` bytes (rounded up to whole pages, and at least the map's pages): the mapping is
    /// moved if it cannot grow in place (unless it was mapped with room enough,
    /// [`FileMap::with_room`]; room left over is unmapped), and pages past the map's are
    /// added as zero pages with `added` (inaccessible, as [`Reservation::new`] makes them,
    /// unless the caller knows what they hold: one `mprotect` fewer). The file pages keep
    /// their read-only protection. The payloads of a split mapping ([`FileMap::split`]) that
    /// stay where they are remain its end: the reservation and the head are then unmapped
    /// together.
    pub(crate) fn from_file_map(
        mut map: FileMap,
        len: usize,
        added: Option<Protection>,
    ) -> io::Result<Reservation> {
        let mapped = map.len.next_multiple_of(PAGE_SIZE);
        let Some(len) = len.max(mapped).checked_next_multiple_of(PAGE_SIZE) else {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        };
        let shared = map.shared.take();
        let map = std::mem::ManuallyDrop::new(map);
        // The split mapping now ends `end` bytes past the map's start.
        let end_at = |end: usize| {
            if let Some(shared) = &shared {
                shared.end_at(map.base.as_ptr() as usize + end);
            }
        };
        // The address space the map holds, its room included (`FileMap::with_room`).
        let held = mapped + map.room;
        if len < held {
            // Room the image does not use is given back.
            // SAFETY: `len..held` are pages of our own mapping past every page the
            // reservation keeps, which nothing refers to.
            unsafe { libc::munmap(map.base.as_ptr().add(len).cast(), held - len) };
            end_at(len);
        }
        if len == mapped {
            return Ok(Reservation {
                base: map.base,
                len: mapped,
                shared,
            });
        }
        let (base, shared) = if len <= held {
            // Room for the zero pages was mapped with the file: nothing moves.
            (map.base, shared)
        } else {
            // The pages leave the split mapping, wherever the kernel puts them.
            end_at(0);
            // SAFETY: `map` is our own mapping of `held` bytes, which nothing else refers
            // to: its owner gave it up (and the split mapping it ended no longer counts
            // it). MREMAP_MAYMOVE lets the kernel move it; on failure the old mapping is left
            // as it was, and is unmapped below.
            let moved =
                unsafe { libc::mremap(map.base.as_ptr().cast(), held, len, libc::MREMAP_MAYMOVE) };
            if moved == libc::MAP_FAILED {
                let error = io::Error::last_os_error();
                drop(std::mem::ManuallyDrop::into_inner(map));
                return Err(error);
            }
            let base = NonNull::new(moved.cast::<u8>())
                .ok_or_else(|| io::Error::other("mremap returned a null mapping"))?;
            (base, None)
        };
        // From here on the reservation owns the mapping, and unmaps it on error.
        let reservation = Reservation { base, len, shared };
        // The grown pages would map the file past its end (a fault on access): replace them
        // with anonymous pages.
        // SAFETY: MAP_FIXED replaces pages of our own mapping only (`mapped..len` of it).
        let address = unsafe {
            libc::mmap(
                base.as_ptr().add(mapped).cast(),
                len - mapped,
                added.map_or(libc::PROT_NONE, prot),
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(reservation)
    }

    /// Changes the protection of a page-aligned `range` of the reservation.
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
        let prot = prot(protection);
        // SAFETY: the range lies inside our own mapping (checked above). Changing protection
        // cannot invalidate Rust references: the loader holds none into module pages.
        let rc = unsafe {
            libc::mprotect(
                self.base.as_ptr().add(range.start).cast(),
                range.len(),
                prot,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Maps `len` bytes of `file` from `file_offset` over the reservation at `offset`, private
    /// (copy on write) and with `protection`. Both offsets must be page-aligned; `len` is
    /// rounded up to whole pages, which read as zeros past the end of the file. Until a page
    /// is written it is the page cache's, shared with every other mapping of the file.
    pub(crate) fn map_file(
        &self,
        offset: usize,
        len: usize,
        file: &File,
        file_offset: u64,
        protection: Protection,
    ) -> io::Result<()> {
        let end = offset
            .checked_add(len)
            .and_then(|end| end.checked_next_multiple_of(PAGE_SIZE));
        let file_offset_ok = libc::off_t::try_from(file_offset)
            .ok()
            .filter(|o| *o as u64 % PAGE_SIZE as u64 == 0);
        let (Some(end), Some(file_offset)) = (end, file_offset_ok) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("file offset {file_offset:#x} is not page-aligned"),
            ));
        };
        if offset % PAGE_SIZE != 0 || end > self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{len:#x} bytes at {offset:#x} are not pages of the reservation"),
            ));
        }
        if len == 0 {
            return Ok(());
        }
        // SAFETY: MAP_FIXED replaces pages of our own reservation only (range checked above);
        // nothing outside this type refers to them yet. A private mapping never writes the
        // file. Failure is reported through MAP_FAILED.
        let address = unsafe {
            let at = self.base.as_ptr().add(offset);
            libc::mmap(
                at.cast(),
                end - offset,
                prot(protection),
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                file.as_raw_fd(),
                file_offset,
            )
        };
        if address == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Faults the writable pages of `range` in now, copying file pages, in one system call
    /// rather than one fault per page at the first write (`MADV_POPULATE_WRITE`, Linux 5.14).
    /// Only a speed-up: where the kernel lacks it, pages fault on first write as usual.
    pub(crate) fn populate_for_write(&self, range: Range<usize>) {
        if range.start % PAGE_SIZE != 0 || range.start >= range.end || range.end > self.len {
            return;
        }
        let len = (range.end - range.start)
            .next_multiple_of(PAGE_SIZE)
            .min(self.len - range.start);
        // SAFETY: the range lies inside our mapping (checked); populating changes no content,
        // it only makes the first write to each page not fault.
        unsafe {
            libc::madvise(
                self.base.as_ptr().add(range.start).cast(),
                len,
                libc::MADV_POPULATE_WRITE,
            );
        }
    }

    /// For each page of the page-aligned `range`, whether it is resident. A page of an
    /// anonymous private mapping that is not resident was never written: it reads as zeros.
    pub(crate) fn resident(&self, range: Range<usize>) -> io::Result<Vec<bool>> {
        if range.start % PAGE_SIZE != 0 || range.start > range.end || range.end > self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("range {range:?} is not pages of the reservation"),
            ));
        }
        let mut vec = vec![0u8; range.len().div_ceil(PAGE_SIZE)];
        if vec.is_empty() {
            return Ok(Vec::new());
        }
        // SAFETY: the range lies inside our mapping (checked) and `vec` has one byte per page.
        let rc = unsafe {
            libc::mincore(
                self.base.as_ptr().add(range.start).cast(),
                range.len(),
                vec.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(vec.into_iter().map(|b| b & 1 != 0).collect())
    }

    /// Makes code written through this reservation at `range` visible to instruction fetch
    /// (`sys::arch`). Pages mapped from a file with their final protection need none: their
    /// bytes reach memory by the kernel's page-cache fill, and the kernel makes the
    /// instruction cache coherent with a page before it maps it executable.
    pub(crate) fn flush_instruction_cache(&self, range: Range<usize>) {
        let base = self.base.as_ptr() as usize;
        let end = range.end.min(self.len);
        super::arch::flush_instruction_cache(base + range.start.min(end)..base + end);
    }
}

/// `len` rounded up to whole pages, at least one.
fn whole_pages(len: usize) -> io::Result<usize> {
    len.max(PAGE_SIZE)
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))
}

/// A new private mapping of `len` bytes at an address the kernel chooses, with `prot`: of
/// `file` from the page-aligned offset, or anonymous (and not counted against the commit
/// limit until written) without one. `populate` maps every page of a file at once.
fn map_anywhere(
    len: usize,
    prot: libc::c_int,
    file: Option<(&File, libc::off_t)>,
    populate: bool,
) -> io::Result<NonNull<u8>> {
    let populate = if populate { libc::MAP_POPULATE } else { 0 };
    let (flags, fd, offset) = match file {
        Some((file, offset)) => (libc::MAP_PRIVATE | populate, file.as_raw_fd(), offset),
        None => (
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        ),
    };
    // SAFETY: a new private mapping at an address the kernel chooses aliases no memory Rust
    // knows about and never writes a file; failure is reported through MAP_FAILED.
    let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, offset) };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned a null mapping"))
}

fn prot(protection: Protection) -> libc::c_int {
    match protection {
        Protection::Read => libc::PROT_READ,
        Protection::ReadWrite => libc::PROT_READ | libc::PROT_WRITE,
        Protection::ReadExecute => libc::PROT_READ | libc::PROT_EXEC,
    }
}

/// A whole file mapped read-only and private: the bytes a module is parsed from. Its pages
/// are the page cache's, so mapping a module twice, or mapping its sections from the same
/// file, costs no second copy. Unmapped exactly once, on drop.
///
/// The file must not be modified in place while it is mapped (replace it with a new file, as
/// compilers and linkers do): its pages would change under the validated view, and a
/// truncation makes reading them fault.
#[derive(Debug)]
pub(crate) struct FileMap {
    base: NonNull<u8>,
    len: usize,
    /// Address space mapped past the file's last page, never read: room for the image's
    /// zero pages (see [`FileMap::with_room`]).
    room: usize,
    /// The mapping this map is a part of, if it was split ([`FileMap::split`]).
    shared: Option<Arc<SharedPages>>,
}

/// The pages of a file mapping split in two ([`FileMap::split`]): the head a module is parsed
/// from, and the payloads after it, which become its image ([`Reservation::from_file_map`]).
/// Each part holds it, and the last to go unmaps what is left of it, so that unloading a
/// module unmaps its head and its image in one `munmap`. The payloads' part, at the end, that
/// goes while the head stays (payloads not used as the image) unmaps its own pages and
/// shortens the mapping, as does one that moves away to grow.
#[derive(Debug)]
struct SharedPages {
    base: NonNull<u8>,
    /// Bytes mapped from `base` that are still the parts'.
    len: AtomicUsize,
}

// SAFETY: an owned range of address space, like a Box<[u8]>; only its length changes, atomically.
unsafe impl Send for SharedPages {}
// SAFETY: as above.
unsafe impl Sync for SharedPages {}

impl SharedPages {
    /// The mapping ends at the address `end` from now on: the part past it unmapped its pages
    /// or moved them away.
    fn end_at(&self, end: usize) {
        let len = end.saturating_sub(self.base.as_ptr() as usize);
        self.len.fetch_min(len, Ordering::Relaxed);
    }
}

impl Drop for SharedPages {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` describe the pages of the split mapping that no part has
        // unmapped or moved away; every part is gone (this is the last reference), and none
        // unmapped them, so they are ours and unmapped only here.
        unsafe { libc::munmap(self.base.as_ptr().cast(), *self.len.get_mut()) };
    }
}

// SAFETY: a FileMap is an owned, read-only range of memory like a Box<[u8]>.
unsafe impl Send for FileMap {}
// SAFETY: as above; shared references only read it.
unsafe impl Sync for FileMap {}

impl FileMap {
    /// Maps the first `len` bytes of `file` (its size); `len` must not be zero.
    ///
    /// With `populate`, for a caller about to read every byte (to hash them), all pages are
    /// mapped by this one call instead of by a page fault every 16 pages while reading
    /// (`docs/PERFORMANCE.md` has what that saved).
    pub(crate) fn new(file: &File, len: usize, populate: bool) -> io::Result<FileMap> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map an empty file",
            ));
        }
        let base = map_anywhere(len, libc::PROT_READ, Some((file, 0)), populate)?;
        Ok(FileMap {
            base,
            len,
            room: 0,
            shared: None,
        })
    }

    /// Maps `file` as [`FileMap::new`] does (without populating it), with `room` bytes
    /// (whole pages) of address space more past its last page, for the image's zero pages
    /// (`bss`): [`Reservation::from_file_map`] then replaces them with anonymous pages in
    /// place, where growing the mapping would move it (`mremap`), the space after a new
    /// mapping being usually taken. The room maps the file past its end, and nothing reads
    /// it: [`FileMap::bytes`] ends at the file's end, and the kernel maps no page past it
    /// ahead of a fault (its fault-around stops at the end of the file).
    pub(crate) fn with_room(file: &File, len: usize, room: usize) -> io::Result<FileMap> {
        if len == 0 || room % PAGE_SIZE != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map an empty file, or room of part of a page",
            ));
        }
        let total = whole_pages(len)?
            .checked_add(room)
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let base = map_anywhere(total, libc::PROT_READ, Some((file, 0)), false)?;
        Ok(FileMap {
            base,
            len,
            room,
            shared: None,
        })
    }

    /// Splits the mapping at the page-aligned offset `at` (inside it) into the mapping of the
    /// bytes before it and the mapping of the rest, which share its pages ([`SharedPages`]):
    /// the last of them to go unmaps both, in one call, unless the rest went first.
    pub(crate) fn split(self, at: usize) -> Result<(FileMap, FileMap), FileMap> {
        if at == 0 || at % PAGE_SIZE != 0 || at >= self.len || self.shared.is_some() {
            return Err(self);
        }
        let whole = std::mem::ManuallyDrop::new(self);
        // SAFETY: `at` lies inside the mapping (checked above).
        let tail = unsafe { NonNull::new_unchecked(whole.base.as_ptr().add(at)) };
        let shared = Arc::new(SharedPages {
            base: whole.base,
            len: AtomicUsize::new(whole.len.next_multiple_of(PAGE_SIZE) + whole.room),
        });
        Ok((
            FileMap {
                base: whole.base,
                len: at,
                room: 0,
                shared: Some(Arc::clone(&shared)),
            },
            FileMap {
                base: tail,
                len: whole.len - at,
                room: whole.room,
                shared: Some(shared),
            },
        ))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes at `base` are mapped readable for as long as `self` lives, and
        // nothing writes them through this process (the mapping is read-only).
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.len) }
    }
}

impl Drop for FileMap {
    fn drop(&mut self) {
        let own_pages = self.len.next_multiple_of(PAGE_SIZE) + self.room;
        match &self.shared {
            // The head of a split mapping: unmapped with the rest when the last part goes.
            Some(shared) if shared.base == self.base => return,
            // The rest of a split mapping, going first: the mapping ends before it now.
            Some(shared) => shared.end_at(self.base.as_ptr() as usize),
            None => {}
        }
        // SAFETY: base/len (and the room past the file's pages) describe exactly the pages of
        // the mapping created in `new` or `with_room`, or of the end of a split mapping that
        // no longer counts them (above), unmapped only here.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), own_pages);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // The end of a split mapping: unmapped with its head when the last of them goes
        // (`SharedPages`), as the `shared` field is dropped.
        if self.shared.is_some() {
            return;
        }
        // SAFETY: base/len describe exactly the reservation's own pages, unmapped only here.
        // munmap can only fail for invalid arguments, which these are not; Drop must not panic.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// An open native library; closed once, on drop.
pub(crate) type NativeLibrary = libloading::os::unix::Library;

/// The handle `dlsym` takes: valid while the [`NativeLibrary`] it came from is open.
pub(crate) type NativeHandle = *mut libc::c_void;

/// Opens the native library `name` as the system's dynamic linker finds it, with every
/// symbol bound now and none added to the global scope (`RTLD_NOW | RTLD_LOCAL`).
///
/// # Safety
/// Opening a library runs its initialisers.
pub(crate) unsafe fn open_library(
    name: &str,
) -> Result<(NativeLibrary, NativeHandle), libloading::Error> {
    use libloading::os::unix::{RTLD_LOCAL, RTLD_NOW};
    // SAFETY: the caller accepts running the library's initialisers.
    let opened = unsafe { NativeLibrary::open(Some(name), RTLD_NOW | RTLD_LOCAL) }?;
    let handle = opened.into_raw();
    // SAFETY: `handle` came from `into_raw` on an open library; it goes back into one
    // `Library`, which closes it once.
    Ok((unsafe { NativeLibrary::from_raw(handle) }, handle))
}

/// What native code the process has loaded, for the imports no module or needed library
/// defines: the dynamic linker's global scope (the program and the libraries it loaded with
/// `RTLD_GLOBAL`), searched through the process's own `dlopen` handle, opened once and never
/// closed, as a handle to the main program needs no closing.
pub(crate) struct ProcessScope(NativeHandle);

impl ProcessScope {
    pub(crate) fn new() -> ProcessScope {
        static PROCESS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let handle = *PROCESS.get_or_init(|| NativeLibrary::this().into_raw() as usize);
        ProcessScope(handle as NativeHandle)
    }

    /// The address the global scope gives `name`, if any.
    pub(crate) fn lookup(&self, name: &str) -> Option<usize> {
        // SAFETY: the process's handle is never closed.
        unsafe { symbol_address(self.0, name) }
    }
}

/// A count that changes whenever the dynamic linker loads or unloads an object: the C
/// library's `dlpi_adds` and `dlpi_subs` counters, read from the first object
/// `dl_iterate_phdr` reports. `None` if the C library does not provide them.
pub(crate) fn loaded_objects_generation() -> Option<(u64, u64)> {
    /// # Safety
    /// Called only by `dl_iterate_phdr` below: `info` points to `size` valid bytes and
    /// `data` to the `Option` it writes.
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // The counters are the last fields; an older C library passes a shorter structure.
        let has_counters = size
            >= std::mem::offset_of!(libc::dl_phdr_info, dlpi_subs)
                + std::mem::size_of::<libc::c_ulonglong>();
        if has_counters {
            // SAFETY: `dl_iterate_phdr` passes a valid `info` of `size` bytes for the duration
            // of the call; `data` is the `Option` passed below.
            unsafe {
                let info = &*info;
                *data.cast::<Option<(u64, u64)>>() = Some((info.dlpi_adds, info.dlpi_subs));
            }
        }
        // One object is enough: the counters are the same in every report.
        1
    }
    let mut generation: Option<(u64, u64)> = None;
    // SAFETY: `first` matches the callback type and only writes `generation` through `data`.
    unsafe { libc::dl_iterate_phdr(Some(first), (&raw mut generation).cast()) };
    generation
}

/// The address `dlsym` gives for `name` in the library `handle` (a handle from `dlopen`),
/// if it finds one that is not null.
///
/// Called once per import and library searched, so without what `libloading` adds to each
/// lookup (clearing and reading `dlerror`, an error message for every miss, an allocation
/// for the name): a miss is only a null result. Names up to 255 bytes are terminated on the
/// stack.
///
/// # Safety
/// `handle` must be a handle `dlopen` returned, for a library that stays open until this
/// returns.
pub(crate) unsafe fn symbol_address(handle: *mut libc::c_void, name: &str) -> Option<usize> {
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
    // SAFETY: `handle` is a live `dlopen` handle (caller's contract) and `terminated` is
    // NUL-terminated; the result is only read as an address, never called or dereferenced
    // here.
    let address = unsafe { libc::dlsym(handle, terminated.as_ptr().cast()) };
    (!address.is_null()).then_some(address as usize)
}

/// What an address the dynamic linker resolved is, by the ELF symbol that defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NativeKind {
    /// `STT_FUNC` or `STT_GNU_IFUNC`.
    Code,
    /// `STT_OBJECT`, `STT_COMMON` or `STT_TLS`.
    Data,
    /// No symbol starts at the address, or one of another type.
    Unknown,
}

/// The ELF type of the native symbol that starts at `address`, and the path of the object
/// defining it (as the dynamic linker names it; empty for the main program).
pub(crate) fn native_symbol(address: usize) -> (NativeKind, String) {
    // glibc's `RTLD_DL_SYMENT` (dlfcn.h): `dladdr1` also returns the symbol's table entry.
    const RTLD_DL_SYMENT: libc::c_int = 1;
    const STT_OBJECT: u8 = 1;
    const STT_FUNC: u8 = 2;
    const STT_COMMON: u8 = 5;
    const STT_TLS: u8 = 6;
    const STT_GNU_IFUNC: u8 = 10;
    // A process-scope import's library is not held open by the loader: another thread may
    // close it while its symbol entry and name are read. Pin it first (the main program,
    // named "", is never unloaded).
    let Some(name) = object_name_at(address) else {
        return (NativeKind::Unknown, String::new());
    };
    let pin = if name.is_empty() {
        None
    } else {
        match Pin::open(&name) {
            Some(pin) => Some(pin),
            None => return (NativeKind::Unknown, name.to_string_lossy().into_owned()),
        }
    };
    // SAFETY: a zeroed Dl_info is a valid out-parameter.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let mut entry: *mut libc::c_void = std::ptr::null_mut();
    // SAFETY: `dladdr1` only reads the dynamic linker's tables for `address` and fills
    // `info` and `entry`; it never dereferences `address` itself.
    let found = unsafe {
        libc::dladdr1(
            address as *const libc::c_void,
            &mut info,
            &mut entry,
            RTLD_DL_SYMENT,
        )
    };
    if found == 0 {
        return (NativeKind::Unknown, String::new());
    }
    // What `dladdr1` found must be the pinned object: another object that took the address
    // after the name was read could be closed while its entry is read. (An address of the
    // main program stays the main program's.)
    let pinned = pin
        .as_ref()
        .is_none_or(|pin| pin.name_pointer() == info.dli_fname);
    if !pinned {
        return (NativeKind::Unknown, name.to_string_lossy().into_owned());
    }
    let object = if info.dli_fname.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null `dli_fname` is the NUL-terminated name of a loaded object, alive
        // while that object is: the main program, or the library pinned above.
        unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }
            .to_string_lossy()
            .into_owned()
    };
    let entry = entry as *const libc::Elf64_Sym;
    if entry.is_null() || info.dli_saddr as usize != address {
        return (NativeKind::Unknown, object);
    }
    // SAFETY: with RTLD_DL_SYMENT, a non-null `entry` points at the symbol's entry in the
    // object's dynamic symbol table, mapped while the object is loaded (it is pinned, or the
    // main program).
    let kind = match unsafe { (*entry).st_info } & 0xf {
        STT_FUNC | STT_GNU_IFUNC => NativeKind::Code,
        STT_OBJECT | STT_COMMON | STT_TLS => NativeKind::Data,
        _ => NativeKind::Unknown,
    };
    (kind, object)
}

/// The address ranges of the `PT_LOAD` segments of the object `info` describes, each with
/// its `p_flags`.
///
/// # Safety
/// `info` must be what `dl_iterate_phdr` passed the running callback: `dlpi_phnum` program
/// headers at `dlpi_phdr`, valid until the callback returns.
unsafe fn loaded_segments(
    info: &libc::dl_phdr_info,
) -> impl Iterator<Item = (Range<usize>, u32)> + '_ {
    // SAFETY: the caller's contract.
    let headers =
        unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
    headers
        .iter()
        .filter(|header| header.p_type == libc::PT_LOAD)
        .map(|header| {
            let start = (info.dlpi_addr as usize).wrapping_add(header.p_vaddr as usize);
            (
                start..start.saturating_add(header.p_memsz as usize),
                header.p_flags,
            )
        })
}

/// The name of the loaded object one of whose segments holds `address`, as the dynamic
/// linker lists it (empty for the main program), copied while the dynamic linker holds its
/// list of objects.
fn object_name_at(address: usize) -> Option<std::ffi::CString> {
    struct Search {
        address: usize,
        name: Option<std::ffi::CString>,
    }
    /// # Safety
    /// Called only by `dl_iterate_phdr` below: `info` is valid for the call and `data` is
    /// the `Search` passed there.
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `dl_iterate_phdr` passes a valid `info` for the duration of the call, with
        // `dlpi_phnum` program headers at `dlpi_phdr` and a NUL-terminated `dlpi_name` (or
        // null); the object stays listed, so mapped, until the callback returns. `data` is
        // the `Search` below.
        unsafe {
            let info = &*info;
            let search = &mut *data.cast::<Search>();
            let holds = loaded_segments(info).any(|(range, _)| range.contains(&search.address));
            if !holds {
                return 0;
            }
            search.name = Some(if info.dlpi_name.is_null() {
                std::ffi::CString::default()
            } else {
                std::ffi::CStr::from_ptr(info.dlpi_name).to_owned()
            });
            1
        }
    }
    let mut search = Search {
        address,
        name: None,
    };
    // SAFETY: `each` matches the callback type and only writes `search` through `data`.
    unsafe { libc::dl_iterate_phdr(Some(each), (&raw mut search).cast()) };
    search.name
}

/// A reference to a loaded library, taken with `dlopen(RTLD_NOLOAD)`, which keeps it loaded
/// until dropped.
struct Pin(*mut libc::c_void);

impl Pin {
    /// Pins the library loaded under `name`, if one is.
    fn open(name: &std::ffi::CStr) -> Option<Pin> {
        // SAFETY: `name` is NUL-terminated; with RTLD_NOLOAD nothing is loaded (no
        // constructor runs), a library already loaded under that name gets one more
        // reference.
        let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
        (!handle.is_null()).then(|| Pin(handle))
    }

    /// The address of the pinned library's name in the dynamic linker's tables (its
    /// `link_map`'s `l_name`, which `dladdr` returns as `dli_fname`): unique among loaded
    /// objects, and only compared, never read.
    fn name_pointer(&self) -> *const libc::c_char {
        /// The start of glibc's `struct link_map` (link.h).
        #[repr(C)]
        struct LinkMap {
            l_addr: usize,
            l_name: *const libc::c_char,
        }
        let mut map: *const LinkMap = std::ptr::null();
        // SAFETY: `self.0` is a live handle; RTLD_DI_LINKMAP writes a `struct link_map *`.
        let failed = unsafe { libc::dlinfo(self.0, libc::RTLD_DI_LINKMAP, (&raw mut map).cast()) };
        if failed != 0 || map.is_null() {
            return std::ptr::null();
        }
        // SAFETY: the pinned library's `link_map` stays allocated while it is loaded; its
        // first two fields are `l_addr` and `l_name`.
        unsafe { (*map).l_name }
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        // SAFETY: `self.0` is the handle `dlopen` returned, closed once here. If this was the
        // last reference (another thread closed the library meanwhile), the library is
        // unloaded now, after its entry and name were read.
        unsafe { libc::dlclose(self.0) };
    }
}

/// The executable segments of every object the dynamic linker has loaded, sorted by start.
pub(crate) fn executable_segments() -> Vec<Range<usize>> {
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `dl_iterate_phdr` passes a valid `info` for the duration of the call, with
        // `dlpi_phnum` program headers at `dlpi_phdr`; `data` is the vector passed below.
        unsafe {
            let segments = &mut *data.cast::<Vec<Range<usize>>>();
            segments.extend(
                loaded_segments(&*info)
                    .filter(|&(_, flags)| flags & libc::PF_X != 0)
                    .map(|(range, _)| range),
            );
        }
        0
    }
    let mut segments: Vec<Range<usize>> = Vec::new();
    // SAFETY: `each` matches the callback type and only touches `segments` through `data`.
    unsafe { libc::dl_iterate_phdr(Some(each), (&raw mut segments).cast()) };
    segments.sort_unstable_by_key(|r| r.start);
    segments
}

/// Opens `path` for reading if it is a regular file, without ever blocking: `open` of a FIFO
/// waits for a writer, so the file is opened non-blocking, checked with `fstat`, and anything
/// but a regular file (a FIFO, a device, a directory) is refused with an error naming what it
/// is. The descriptor is close-on-exec and, once checked, blocking again.
pub(crate) fn open_regular(path: &std::path::Path) -> io::Result<File> {
    let (file, _) = open_module(path)?;
    // SAFETY: F_GETFL and F_SETFL on a descriptor this function owns change only its flags.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(file)
}

/// Opens `path` as [`open_regular`] does, and its size, from the one `fstat` that checks it
/// is a regular file. The descriptor stays non-blocking, which reading or mapping a regular
/// file ignores: a load saves the two `fcntl` calls of making it blocking, and a second
/// `fstat` for the size.
/// Reads bytes of `file` from `offset` into `buf`, without moving the file position.
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

pub(crate) fn open_module(path: &std::path::Path) -> io::Result<(File, u64)> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    // O_NOCTTY: a terminal given as a module never becomes the controlling one.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let metadata = file.metadata()?;
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        let (kind, what) = if file_type.is_fifo() {
            (io::ErrorKind::InvalidInput, "a FIFO")
        } else if file_type.is_dir() {
            (io::ErrorKind::IsADirectory, "a directory")
        } else if file_type.is_char_device() {
            (io::ErrorKind::InvalidInput, "a character device")
        } else if file_type.is_block_device() {
            (io::ErrorKind::InvalidInput, "a block device")
        } else if file_type.is_socket() {
            (io::ErrorKind::InvalidInput, "a socket")
        } else {
            (io::ErrorKind::InvalidInput, "of an unknown type")
        };
        return Err(io::Error::new(kind, format!("not a regular file ({what})")));
    }
    Ok((file, metadata.len()))
}

/// A thread-specific value with a destructor that runs at thread exit (a pthread key). There
/// is one per process, for the module thread-local blocks (`tls`).
pub(crate) struct ThreadKey(libc::pthread_key_t);

impl ThreadKey {
    /// A new key whose non-null values `destructor` receives when their thread exits; glibc
    /// runs it again when a destructor sets a value.
    pub(crate) fn new(destructor: extern "C" fn(*mut libc::c_void)) -> io::Result<ThreadKey> {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is a valid out-pointer; the destructor has the required signature.
        let rc = unsafe { libc::pthread_key_create(&mut key, Some(destructor)) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(ThreadKey(key))
    }

    /// The calling thread's value, null if none.
    pub(crate) fn get(&self) -> *mut libc::c_void {
        // SAFETY: reading this thread's value of a valid key.
        unsafe { libc::pthread_getspecific(self.0) }
    }

    /// Sets the calling thread's value.
    pub(crate) fn set(&self, value: *mut libc::c_void) -> io::Result<()> {
        // SAFETY: storing this thread's value of a valid key.
        match unsafe { libc::pthread_setspecific(self.0, value) } {
            0 => Ok(()),
            rc => Err(io::Error::from_raw_os_error(rc)),
        }
    }
}

/// Calls a module's `main(argc, argv)`. A C++ exception that leaves it reaches the Rust
/// runtime's frames, which end the process with `SIGABRT`, as `std::terminate` ends a native
/// program (Windows needs a frame of its own for that: `sys/windows/entry.rs`). Inlined, so
/// that backtraces show `main` called from `Module::run_main` as before.
#[inline(always)]
pub(crate) fn call_main(
    main: extern "C" fn(libc::c_int, *mut *mut libc::c_char) -> libc::c_int,
    argc: libc::c_int,
    argv: *mut *mut libc::c_char,
) -> libc::c_int {
    main(argc, argv)
}

/// Writes `bytes` to the standard error file in one system call, bypassing Rust's `stderr`
/// (for fatal messages and signal handlers).
pub(crate) fn write_stderr(bytes: &[u8]) {
    // SAFETY: writing an initialised buffer of that length to fd 2.
    unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
}

/// Registers `handler` with the C library's `atexit`: it runs when the process exits through
/// `exit` (or by returning from `main`), before C stdio buffers are flushed.
pub(crate) fn at_exit(handler: extern "C" fn()) {
    // SAFETY: registering a plain `extern "C" fn()` with the C library. A failure to
    // register (only when out of memory) means the handler does not run at exit.
    unsafe { libc::atexit(handler) };
}

/// Ends the process through the C library's `exit` (see `crate::exit`).
pub(crate) fn exit(status: i32) -> ! {
    std::process::exit(status)
}

unsafe extern "C" {
    /// The C library's `__cxa_atexit` (Itanium C++ ABI).
    #[link_name = "__cxa_atexit"]
    pub(crate) fn cxa_atexit(
        function: Option<unsafe extern "C" fn(*mut libc::c_void)>,
        argument: *mut libc::c_void,
        dso: *mut libc::c_void,
    ) -> libc::c_int;

    /// The C library's runner of exit handlers registered for one shared object.
    #[link_name = "__cxa_finalize"]
    pub(crate) fn cxa_finalize(dso_handle: *mut libc::c_void);
}

#[cfg(test)]
mod regular_file_tests {
    use super::*;
    use crate::signature::{read_module_file, read_signature_file};
    use std::path::Path;

    #[test]
    fn only_regular_files_are_read_and_a_fifo_is_never_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        // Without a writer, a blocking open would never return.
        let error = read_module_file(&fifo).unwrap_err();
        assert_eq!(error.to_string(), "not a regular file (a FIFO)");
        let error = read_signature_file(&fifo).unwrap_err().to_string();
        assert!(
            error.contains("fifo: not a regular file (a FIFO)"),
            "{error}"
        );
        let error = read_module_file(dir.path()).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::IsADirectory);
        assert_eq!(error.to_string(), "not a regular file (a directory)");
        let error = read_module_file(Path::new("/dev/null")).unwrap_err();
        assert_eq!(error.to_string(), "not a regular file (a character device)");

        let regular = dir.path().join("file");
        std::fs::write(&regular, b"module bytes").unwrap();
        assert_eq!(read_module_file(&regular).unwrap(), b"module bytes");
        let file = open_regular(&regular).unwrap();
        // SAFETY: F_GETFL on an open descriptor.
        let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0, "blocking again once checked");
        // SAFETY: F_GETFD on an open descriptor.
        let fd_flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFD) };
        assert_ne!(fd_flags & libc::FD_CLOEXEC, 0, "close-on-exec");
    }
}

#[cfg(test)]
mod split_map_tests {
    use super::*;

    /// Whether every page of `len` bytes at `base` is mapped (`mincore` fails with `ENOMEM`
    /// on an unmapped page).
    fn mapped(base: usize, len: usize) -> bool {
        let mut pages = vec![0u8; len.div_ceil(PAGE_SIZE)];
        // SAFETY: mincore only reports on the range; `pages` has a byte per page.
        unsafe { libc::mincore(base as *mut libc::c_void, len, pages.as_mut_ptr()) == 0 }
    }

    /// Whether the tests run under an emulator (`SMF_TEST_RUNNER`, README "aarch64"): qemu
    /// keeps the guest's address space reserved in its own, so `mincore` finds unmapped guest
    /// pages mapped.
    fn emulated() -> bool {
        let emulated = std::env::var_os("SMF_TEST_RUNNER").is_some();
        if emulated {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "skipped: mincore under an emulator sees the emulator's mappings"
            );
        }
        emulated
    }

    /// Runs the test `name` of this module in a process of its own, where no other test maps
    /// memory: a page this process unmaps is at once the likeliest place for another thread's
    /// next mapping, so "unmapped" can only be observed where nothing else maps. Returns true
    /// in that process (the caller goes on with the test) and false in the parent, once the
    /// child has passed.
    fn alone(name: &str) -> bool {
        const ALONE: &str = "SMF_SPLIT_MAP_TEST_ALONE";
        if std::env::var_os(ALONE).is_some() {
            return true;
        }
        let test = format!("sys::unix::split_map_tests::{name}");
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &test, "--test-threads=1", "--nocapture"])
            .env(ALONE, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{test} alone ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        false
    }

    /// A file of three pages, mapped with a page of room and split after its first page.
    fn split() -> (FileMap, FileMap, usize) {
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &[7u8; 3 * PAGE_SIZE]).unwrap();
        let map = FileMap::with_room(&file, 3 * PAGE_SIZE, PAGE_SIZE).unwrap();
        let base = map.bytes().as_ptr() as usize;
        let (head, tail) = map.split(PAGE_SIZE).unwrap();
        (head, tail, base)
    }

    #[test]
    fn the_head_and_the_image_of_a_split_mapping_are_unmapped_together_by_the_last() {
        if emulated()
            || !alone("the_head_and_the_image_of_a_split_mapping_are_unmapped_together_by_the_last")
        {
            return;
        }
        let (head, tail, base) = split();
        let image =
            Reservation::from_file_map(tail, 3 * PAGE_SIZE, Some(Protection::ReadWrite)).unwrap();
        assert_eq!(image.base() as usize, base + PAGE_SIZE, "nothing moved");
        drop(image);
        assert!(
            mapped(base, 4 * PAGE_SIZE),
            "the image stays while the head does"
        );
        assert_eq!(head.bytes(), &[7u8; PAGE_SIZE][..]);
        drop(head);
        assert!(!mapped(base, PAGE_SIZE) && !mapped(base + PAGE_SIZE, 3 * PAGE_SIZE));

        // The other order.
        let (head, tail, base) = split();
        let image = Reservation::from_file_map(tail, 3 * PAGE_SIZE, None).unwrap();
        drop(head);
        assert!(
            mapped(base, 4 * PAGE_SIZE),
            "the head stays while the image does"
        );
        drop(image);
        assert!(!mapped(base, PAGE_SIZE) && !mapped(base + PAGE_SIZE, 3 * PAGE_SIZE));
    }

    #[test]
    fn payloads_that_go_first_or_move_unmap_their_own_pages_only() {
        if emulated() || !alone("payloads_that_go_first_or_move_unmap_their_own_pages_only") {
            return;
        }
        // Not made into an image (its pages are not laid out as the image): they go at once.
        let (head, tail, base) = split();
        drop(tail);
        assert!(mapped(base, PAGE_SIZE));
        assert!(!mapped(base + PAGE_SIZE, PAGE_SIZE) && !mapped(base + 3 * PAGE_SIZE, PAGE_SIZE));
        assert_eq!(head.bytes(), &[7u8; PAGE_SIZE][..]);
        drop(head);
        assert!(!mapped(base, PAGE_SIZE));

        // Grown past its room: moved (or grown in place), no longer part of the head's mapping.
        let (head, tail, base) = split();
        let image = Reservation::from_file_map(tail, 64 * PAGE_SIZE, None).unwrap();
        let image_base = image.base() as usize;
        drop(head);
        assert!(!mapped(base, PAGE_SIZE), "the head went alone");
        assert!(mapped(image_base, 64 * PAGE_SIZE), "the image stays");
        drop(image);
        assert!(!mapped(image_base, PAGE_SIZE));
    }
}
