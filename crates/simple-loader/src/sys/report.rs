//! The part of a crash report that is the same on every system: where the crash was, named
//! by module function, found without allocating, waiting for a lock, or faulting again.

use std::fmt::Write as _;

use super::arch::{self, Interrupted};

/// A fixed buffer for formatting without allocating.
pub(crate) struct Line {
    pub(crate) bytes: [u8; 768],
    pub(crate) len: usize,
}

impl Line {
    pub(crate) fn new() -> Line {
        Line {
            bytes: [0; 768],
            len: 0,
        }
    }
}

impl std::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.bytes.len() - self.len;
        let n = s.len().min(room);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes where `interrupted` was: ` in function+offset (module)` for module code, else the
/// bare program counter and the innermost module function on the stack that called out.
/// `read` copies memory of this process without faulting (false if not all readable).
pub(crate) fn locate(
    line: &mut Line,
    interrupted: Interrupted,
    read: fn(usize, &mut [usize]) -> bool,
) {
    let Interrupted { pc, sp, link } = interrupted;
    if crate::runtime::try_with_symbols(pc, |_| ()).is_some() {
        let _ = write!(line, " in ");
        name_address(line, pc);
    } else {
        let _ = write!(line, " at pc {pc:#x}, outside any module");
        // A return address still in the link register is the innermost one.
        let linked = link.filter(|&address| follows_module_call(address));
        if let Some(caller) = linked
            .map(|address| address - 1)
            .or_else(|| nearest_module_return(sp, read))
        {
            let _ = write!(line, ", called from ");
            name_address(line, caller);
        }
    }
}

/// Writes `function+offset (module)` for an address inside a module, and ` at file:line`
/// when the module's source map covers it.
fn name_address(line: &mut Line, address: usize) {
    crate::runtime::try_with_symbols(address, |symbols| {
        match symbols.function_at(address) {
            Some(function) => {
                let _ = write!(
                    line,
                    "{}+{:#x} ({})",
                    symbols.name_of(&function),
                    address - function.start,
                    symbols.module
                );
            }
            None => {
                let _ = write!(line, "{}+{:#x}", symbols.module, address - symbols.base);
            }
        }
        if let Some(source) = symbols.source_at(address) {
            let _ = write!(line, " at {}:{}", source.file, source.line);
        }
    });
}

/// How far above the interrupted stack pointer [`nearest_module_return`] looks.
const STACK_SCAN_BYTES: usize = 32 * 1024;

/// For a crash outside module code (in a library a module called): the innermost word of the
/// interrupted stack, from `sp` up, that is a return address into module code (it follows a
/// call instruction in a module's code section); the address of the call's last byte.
///
/// This is a scan, not an unwind: it knows no frame sizes, so a stale return address left in
/// a frame's unused slots could be found before the real one. It reads the stack with
/// `process_vm_readv`, which stops at an unmapped page instead of faulting.
fn nearest_module_return(sp: usize, read: fn(usize, &mut [usize]) -> bool) -> Option<usize> {
    // One page at a time: a page is readable whole or not at all.
    let mut words = [0usize; super::PAGE_SIZE / size_of::<usize>()];
    let mut at = sp;
    while at.wrapping_sub(sp) < STACK_SCAN_BYTES {
        let len = super::PAGE_SIZE - at % super::PAGE_SIZE;
        let words = &mut words[..len / size_of::<usize>()];
        if !read(at, words) {
            return None;
        }
        if let Some(&word) = words.iter().find(|&&word| follows_module_call(word)) {
            return Some(word - 1);
        }
        at = at.checked_add(len)?;
    }
    None
}

/// Whether `address` lies in a module's code section right after a call instruction
/// (`sys::arch::follows_call`).
fn follows_module_call(address: usize) -> bool {
    let Some(last) = address.checked_sub(1) else {
        return false;
    };
    crate::runtime::try_with_symbols(last, |symbols| {
        let Some(&(start, _)) = symbols
            .code
            .iter()
            .find(|(start, end)| (*start..*end).contains(&last))
        else {
            return false;
        };
        // SAFETY: `start..address` lies in a code section, mapped readable for as long as the
        // module is listed, which the read lock held here guarantees.
        let byte = |at: usize| unsafe { std::ptr::read_volatile(at as *const u8) };
        arch::follows_call(address, start, byte)
    })
    .unwrap_or(false)
}
