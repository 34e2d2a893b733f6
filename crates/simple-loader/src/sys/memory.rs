//! What a [`Reservation`] does the same way on every system: bounds-checked copies into and
//! out of its pages, relocation stores, and copies shared with running module code.

use std::io;

use super::Reservation;

impl Reservation {
    pub(crate) fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Writes the little-endian 64-bit `value` at `offset` of the reservation (a relocation:
    /// one store, where [`Reservation::write`] would call `memcpy`).
    ///
    /// # Safety
    /// As for [`Reservation::write`].
    pub(crate) unsafe fn write_u64(&self, offset: usize, value: u64) -> io::Result<()> {
        self.check(offset, 8)?;
        // SAFETY: in bounds (checked), writable and unshared (caller's contract); the store
        // is unaligned-safe.
        unsafe {
            std::ptr::write_unaligned(self.base.as_ptr().add(offset).cast::<u64>(), value.to_le())
        };
        Ok(())
    }

    /// Adds `value` to the little-endian 64-bit word at `offset` of the reservation (a
    /// relocation whose addend is the word in place), wrapping.
    ///
    /// # Safety
    /// As for [`Reservation::write`]; the word must also be readable.
    pub(crate) unsafe fn add_u64(&self, offset: usize, value: u64) -> io::Result<()> {
        self.check(offset, 8)?;
        // SAFETY: in bounds (checked), readable, writable and unshared (caller's contract);
        // the accesses are unaligned-safe.
        unsafe {
            let word = self.base.as_ptr().add(offset).cast::<u64>();
            let sum = u64::from_le(std::ptr::read_unaligned(word)).wrapping_add(value);
            std::ptr::write_unaligned(word, sum.to_le());
        }
        Ok(())
    }

    /// Lets `fill` write `len` bytes at `offset` of the reservation in place (decompressing
    /// a payload straight into the image), and returns what it returns.
    ///
    /// # Safety
    /// As for [`Reservation::write`].
    pub(crate) unsafe fn fill<T>(
        &self,
        offset: usize,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> T,
    ) -> io::Result<T> {
        self.check(offset, len)?;
        // SAFETY: in bounds (checked), writable, and no other thread or reference touches
        // these bytes while the slice lives (caller's contract); the slice ends with `fill`.
        let bytes = unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().add(offset), len) };
        Ok(fill(bytes))
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

    /// The `len` bytes at `offset` of the reservation, borrowed from it.
    ///
    /// # Safety
    /// The pages must be readable, and stay so and unwritten for as long as the reservation
    /// is borrowed.
    pub(crate) unsafe fn bytes(&self, offset: usize, len: usize) -> io::Result<&[u8]> {
        self.check(offset, len)?;
        // SAFETY: in bounds (checked); readable and never written while `self` is borrowed
        // (caller's contract), so the shared slice sees no change; the reservation is
        // unmapped only when dropped, which the borrow rules out.
        Ok(unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(offset), len) })
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

    /// Copies bytes at `offset` of the reservation into `out` while module code on other
    /// threads may be writing them: each aligned 8-byte word is read with one atomic load, the
    /// unaligned ends byte by byte. A value written meanwhile is read before or after the
    /// write, word by word: a value that spans words may mix both.
    ///
    /// # Safety
    /// The source pages must currently be readable.
    pub(crate) unsafe fn read_shared(&self, offset: usize, out: &mut [u8]) -> io::Result<()> {
        self.check(offset, out.len())?;
        // SAFETY: in bounds (checked) and readable (caller's contract).
        let source = unsafe { self.base.as_ptr().add(offset) };
        copy_shared(source, out.as_mut_ptr(), out.len(), Shared::Source);
        Ok(())
    }

    /// Copies `bytes` to `offset` of the reservation, memory module code on other threads
    /// may be reading or writing: each aligned 8-byte word is written with one atomic store,
    /// the unaligned ends byte by byte.
    ///
    /// # Safety
    /// The destination pages must currently be writable.
    pub(crate) unsafe fn write_shared(&self, offset: usize, bytes: &[u8]) -> io::Result<()> {
        self.check(offset, bytes.len())?;
        // SAFETY: in bounds (checked) and writable (caller's contract).
        let target = unsafe { self.base.as_ptr().add(offset) };
        copy_shared(bytes.as_ptr(), target, bytes.len(), Shared::Target);
        Ok(())
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
}

/// Which side of a [`copy_shared`] other threads may access.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shared {
    Source,
    Target,
}

/// Copies `len` bytes from `from` to `to`, both valid for `len` bytes and not overlapping.
/// The `shared` side is accessed with atomic operations only: single bytes until it is
/// 8-byte aligned, then aligned 8-byte words, then single bytes; the other side, private to
/// the caller, with plain unaligned accesses.
fn copy_shared(from: *const u8, to: *mut u8, len: usize, shared: Shared) {
    use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
    let shared_address = match shared {
        Shared::Source => from as usize,
        Shared::Target => to as usize,
    };
    let head = (shared_address.next_multiple_of(8) - shared_address).min(len);
    let words_end = head + (len - head) / 8 * 8;
    let mut at = 0;
    // SAFETY (each block): `from` and `to` are valid for `len` bytes and do not overlap (the
    // callers' contract: one is inside a checked reservation, the other a Rust slice); the
    // shared side is accessed atomically, with 8-byte accesses only where it is 8-byte
    // aligned (`head` makes it so); the private side is accessed unaligned.
    while at < len {
        // SAFETY: `at < len`, so both offsets stay inside the `len` bytes of each side.
        let (from, to) = unsafe { (from.add(at), to.add(at)) };
        if at >= head && at < words_end {
            match shared {
                // SAFETY: as above; `from` is 8-byte aligned here.
                Shared::Source => unsafe {
                    let value = AtomicU64::from_ptr(from as *mut u64).load(Relaxed);
                    std::ptr::write_unaligned(to.cast::<u64>(), value);
                },
                // SAFETY: as above; `to` is 8-byte aligned here.
                Shared::Target => unsafe {
                    let value = std::ptr::read_unaligned(from.cast::<u64>());
                    AtomicU64::from_ptr(to.cast::<u64>()).store(value, Relaxed);
                },
            }
            at += 8;
        } else {
            match shared {
                // SAFETY: as above, one byte on each side.
                Shared::Source => unsafe {
                    *to = AtomicU8::from_ptr(from as *mut u8).load(Relaxed);
                },
                // SAFETY: as above, one byte on each side.
                Shared::Target => unsafe { AtomicU8::from_ptr(to).store(*from, Relaxed) },
            }
            at += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every alignment of either side and every length up to a few words copies exactly the
    /// bytes asked for, and touches nothing around them.
    #[test]
    fn shared_copies_are_exact_at_every_alignment() {
        let source: Vec<u8> = (0..64u8)
            .map(|b| b.wrapping_mul(37).wrapping_add(1))
            .collect();
        for shared in [Shared::Source, Shared::Target] {
            for from in 0..9 {
                for to in 0..9 {
                    for len in 0..40 {
                        // u64 storage, so that offset 0 is 8-byte aligned.
                        let mut target = [0u64; 8];
                        let base = target.as_mut_ptr().cast::<u8>();
                        // SAFETY: `from + len` and `to + len` stay within the 64 bytes of both
                        // buffers, which do not overlap.
                        unsafe {
                            copy_shared(source.as_ptr().add(from), base.add(to), len, shared)
                        };
                        // SAFETY: the 64 bytes of `target`, viewed as bytes.
                        let bytes = unsafe { std::slice::from_raw_parts(base, 64) };
                        assert_eq!(&bytes[to..to + len], &source[from..from + len]);
                        assert!(
                            bytes[..to]
                                .iter()
                                .chain(&bytes[to + len..])
                                .all(|&b| b == 0)
                        );
                    }
                }
            }
        }
    }
}
