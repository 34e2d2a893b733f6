//! The arguments a module's constructors receive.
//!
//! glibc calls the ELF constructors of a program and of every shared object it loads as
//! `void f(int argc, char **argv, char **envp)`, and code relies on it: C constructors declared
//! with those parameters, and Rust's standard library, which takes `std::env::args` from there.
//! The loader passes the same three values:
//!
//! - `argc`/`argv`: the process's own, as glibc gave them to the loader's constructor
//!   (`sys::process_arguments`), or the program arguments a host chose for the module
//!   ([`LoadOptions::with_arguments`](crate::LoadOptions::with_arguments)), held in an
//!   [`Argv`] that the module keeps for as long as it is loaded;
//! - `envp`: the C library's `environ` at the time of the call, as glibc passes it.

use std::ffi::{CString, OsStr, c_char, c_int};

/// A C `argv` array of owned strings, null-terminated, at a fixed address until dropped.
///
/// Module code may keep the pointers (C programs store `argv`) and may write into the strings
/// and the array as C allows; both are heap blocks that nothing else refers to, freed only
/// when the `Argv` drops.
pub(crate) struct Argv {
    /// The array C sees: the pointers of `strings`, then a null pointer; from
    /// `Box::into_raw`.
    pointers: *mut [*mut c_char],
    /// The strings, from `CString::into_raw`, recorded apart from the array because module
    /// code may replace entries of the array (C allows writing `argv[i]`).
    strings: Vec<*mut c_char>,
}

// SAFETY: the `Argv` owns the array and the strings; Rust code never reads or writes them
// after construction (only `Drop` frees them), so sharing the pointers between threads is
// as safe as sharing C's own `argv`.
unsafe impl Send for Argv {}
// SAFETY: as above; `&Argv` gives out nothing but the addresses.
unsafe impl Sync for Argv {}

impl Argv {
    /// The array for `args`. An argument with an interior NUL byte is cut at the first NUL,
    /// which is all of it C can see.
    pub(crate) fn new<I, S>(args: I) -> Argv
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let strings: Vec<*mut c_char> = args
            .into_iter()
            .map(|arg| {
                let bytes = arg.as_ref().as_encoded_bytes();
                let until_nul = bytes.split(|&b| b == 0).next().unwrap_or_default();
                // No NUL left in `until_nul`, so this cannot fail.
                CString::new(until_nul).unwrap_or_default().into_raw()
            })
            .collect();
        let pointers: Box<[*mut c_char]> = strings
            .iter()
            .copied()
            .chain(std::iter::once(std::ptr::null_mut()))
            .collect();
        Argv {
            pointers: Box::into_raw(pointers),
            strings,
        }
    }

    /// `argc`, saturated at `c_int::MAX`.
    pub(crate) fn argc(&self) -> c_int {
        c_int::try_from(self.strings.len()).unwrap_or(c_int::MAX)
    }

    /// `argv`: valid, and at the same address, until `self` drops.
    pub(crate) fn argv(&self) -> *mut *mut c_char {
        self.pointers.cast()
    }
}

impl Drop for Argv {
    fn drop(&mut self) {
        // SAFETY: `pointers` came from `Box::into_raw` and each of `strings` from
        // `CString::into_raw`; each is freed once, here.
        unsafe {
            drop(Box::from_raw(self.pointers));
            for &string in &self.strings {
                drop(CString::from_raw(string));
            }
        }
    }
}

impl std::fmt::Debug for Argv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argv")
            .field("argc", &self.strings.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn argv_is_null_terminated_and_cut_at_nul() {
        let argv = Argv::new(["prog", "a\0hidden", ""]);
        assert_eq!(argv.argc(), 3);
        let read = |i: usize| {
            // SAFETY: the array has argc strings, then a null pointer.
            let p = unsafe { *argv.argv().add(i) };
            // SAFETY: non-null entries are NUL-terminated strings owned by `argv`.
            (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_bytes().to_vec())
        };
        assert_eq!(read(0).as_deref(), Some(&b"prog"[..]));
        assert_eq!(read(1).as_deref(), Some(&b"a"[..]));
        assert_eq!(read(2).as_deref(), Some(&b""[..]));
        assert_eq!(read(3), None);
    }

    #[test]
    fn replaced_entries_are_not_freed() {
        let argv = Argv::new(["prog", "a"]);
        let mut own = *b"mine\0";
        // SAFETY: entry 1 exists; C code may write argv[i] just so.
        unsafe { *argv.argv().add(1) = own.as_mut_ptr().cast() };
        // Dropping frees the strings it made, not the stack buffer now in the array
        // (which would abort in the allocator).
        drop(argv);
    }
}
