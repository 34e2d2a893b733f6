//! Unix implementation of the platform layer (mmap, mprotect, munmap).

use std::io;
use std::ops::Range;
use std::ptr::NonNull;

use super::Protection;

/// Size of a page on every target this file supports so far.
pub(crate) const PAGE_SIZE: usize = 4096;

/// A contiguous range of address space owned by one module. Created inaccessible; its pages
/// get their protection through [`Reservation::protect`]. Unmapped exactly once, on drop.
#[derive(Debug)]
pub(crate) struct Reservation {
    base: NonNull<u8>,
    len: usize,
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
        let len = len
            .max(PAGE_SIZE)
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        // SAFETY: an anonymous private mapping at an address the kernel chooses does not
        // alias any memory Rust knows about; failure is reported through MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        Ok(Reservation { base, len })
    }

    pub(crate) fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
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
        let prot = match protection {
            Protection::Read => libc::PROT_READ,
            Protection::ReadWrite => libc::PROT_READ | libc::PROT_WRITE,
            Protection::ReadExecute => libc::PROT_READ | libc::PROT_EXEC,
        };
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

    /// Copies `bytes` to `offset` of the reservation.
    ///
    /// # Safety
    /// The destination pages must currently be writable and no other thread may access them.
    pub(crate) unsafe fn write(&self, offset: usize, bytes: &[u8]) -> io::Result<()> {
        self.check(offset, bytes.len())?;
        // SAFETY: in bounds (checked), writable and unshared (caller's contract); the source
        // is a Rust slice, which cannot overlap our anonymous mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.base.as_ptr().add(offset),
                bytes.len(),
            )
        };
        Ok(())
    }

    /// Copies bytes at `offset` of the reservation into `out`.
    ///
    /// # Safety
    /// The source pages must currently be readable.
    pub(crate) unsafe fn read_into(&self, offset: usize, out: &mut [u8]) -> io::Result<()> {
        self.check(offset, out.len())?;
        // SAFETY: in bounds (checked) and readable (caller's contract); `out` is a Rust
        // slice, which cannot overlap our mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.as_ptr().add(offset),
                out.as_mut_ptr(),
                out.len(),
            )
        };
        Ok(())
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

    fn check(&self, offset: usize, len: usize) -> io::Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("write of {len:#x} bytes at {offset:#x} leaves the reservation"),
            )),
        }
    }

    /// Makes code written through this reservation visible to instruction fetch. x86-64 keeps
    /// instruction and data caches coherent, so only the compiler needs to be kept from
    /// reordering; other architectures must flush here.
    pub(crate) fn flush_instruction_cache(&self, _range: Range<usize>) {
        #[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
        compile_error!("flush_instruction_cache needs an implementation for this architecture");
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // SAFETY: base/len describe exactly the mapping created in `new`, unmapped only here.
        // munmap can only fail for invalid arguments, which these are not; Drop must not panic.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}
