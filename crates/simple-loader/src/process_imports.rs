//! Imports resolved in what the process has loaded (`sys::ProcessScope`), remembered across
//! loads while the dynamic linker's set of loaded objects is unchanged.
//!
//! A module of SQLite's size imports some sixty C library functions, and every load looked
//! each of them up again with `dlsym` (which searches every object of the global scope) and
//! checked what it found. A lookup in the global scope gives the same answer as long as no
//! object was loaded or unloaded: the objects are searched in load order, so a later load
//! cannot come before a found definition, and an unload counts. The C library counts both
//! (`sys::loaded_objects_generation`); each load reads the count once, and what was found
//! and checked under another count is forgotten. Names not found are not remembered (an
//! object made global later may define them).
//!
//! Answers are written down only by a load that sees the count the load before it saw: a
//! module whose needed library is loaded by its load and unloaded by its unload (Lua's libm,
//! in a process that has not loaded it otherwise) changes the count every time, and writing
//! answers no later load could use had cost more than looking them up (`perf`: about a tenth
//! of loading and unloading Lua's module).

use std::collections::HashMap;
use std::sync::Mutex;

use smf_format::ImportKind;

/// Found definitions: the address of each name, and the import kinds it was checked for
/// (one bit per [`ImportKind`]) against what the dynamic linker says is there
/// (`loader::check_native_kind`).
struct Found {
    generation: (u64, u64),
    addresses: HashMap<Box<str>, (usize, u8)>,
}

/// What the loads of the process found, and the generation the last of them saw.
struct Remembered {
    found: Option<Found>,
    last_seen: Option<(u64, u64)>,
}

static REMEMBERED: Mutex<Remembered> = Mutex::new(Remembered {
    found: None,
    last_seen: None,
});

/// The process scope as one load sees it: its generation, read once.
pub(crate) struct ProcessImports {
    scope: crate::sys::ProcessScope,
    generation: Option<(u64, u64)>,
    /// Whether the load before saw the same generation: only then are answers written down.
    steady: bool,
}

impl ProcessImports {
    pub(crate) fn new() -> ProcessImports {
        ProcessImports::at(crate::sys::loaded_objects_generation())
    }

    /// The process scope as a load that read `generation` sees it.
    fn at(generation: Option<(u64, u64)>) -> ProcessImports {
        let mut remembered = lock();
        let steady = generation.is_some() && remembered.last_seen == generation;
        remembered.last_seen = generation;
        ProcessImports {
            scope: crate::sys::ProcessScope::new(),
            generation,
            steady,
        }
    }

    /// The address the process's scope gives `name` imported as `kind`, if any: remembered,
    /// or looked up and then checked by `check`, whose refusal is returned (and nothing
    /// remembered).
    pub(crate) fn resolve<E>(
        &self,
        name: &str,
        kind: ImportKind,
        check: impl FnOnce(usize) -> Result<(), E>,
    ) -> Result<Option<usize>, E> {
        self.resolve_with(name, kind, || self.scope.lookup(name), check)
    }

    /// [`ProcessImports::resolve`], with `lookup` looking `name` up in the process's scope.
    fn resolve_with<E>(
        &self,
        name: &str,
        kind: ImportKind,
        lookup: impl FnOnce() -> Option<usize>,
        check: impl FnOnce(usize) -> Result<(), E>,
    ) -> Result<Option<usize>, E> {
        let Some(generation) = self.generation else {
            return lookup().map(|a| check(a).map(|()| a)).transpose();
        };
        let bit = kind_bit(kind);
        let remembered = lock()
            .found
            .as_ref()
            .filter(|found| found.generation == generation)
            .and_then(|found| found.addresses.get(name).copied());
        let address = match remembered {
            Some((address, kinds)) if kinds & bit != 0 => return Ok(Some(address)),
            Some((address, _)) => address,
            None => match lookup() {
                Some(address) => address,
                None => return Ok(None),
            },
        };
        check(address)?;
        if !self.steady {
            return Ok(Some(address));
        }
        let mut remembered = lock();
        let found = remembered.found.get_or_insert_with(|| Found {
            generation,
            addresses: HashMap::new(),
        });
        if found.generation != generation {
            found.generation = generation;
            found.addresses.clear();
        }
        let entry = found.addresses.entry(name.into()).or_insert((address, 0));
        if entry.0 == address {
            entry.1 |= bit;
        }
        Ok(Some(address))
    }
}

fn lock() -> std::sync::MutexGuard<'static, Remembered> {
    // What is remembered stays consistent if a holder panicked: each update is one insert.
    REMEMBERED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

const _: () = assert!(ImportKind::ALL.len() <= 8, "a kind set is a u8");

/// The bit of `kind` in [`Found::addresses`]' kind sets.
fn kind_bit(kind: ImportKind) -> u8 {
    let position = ImportKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
    1 << position
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remembers(name: &str) -> bool {
        lock()
            .found
            .as_ref()
            .is_some_and(|found| found.addresses.contains_key(name))
    }

    /// Loads that each see another generation write nothing down; the second of two that see
    /// the same one does, and the next load with it finds the answer without looking it up.
    /// (Loads of other tests, which run alongside and see the real generation, can come in
    /// between two of these: the steady case is tried until none did.)
    #[test]
    fn answers_are_written_down_only_while_the_generation_holds() {
        let name = "smf_test_remembered_name";
        let lookups = std::cell::Cell::new(0);
        let resolve = |imports: &ProcessImports| {
            let lookup = || {
                lookups.set(lookups.get() + 1);
                Some(0x1000)
            };
            let checked = imports.resolve_with(name, ImportKind::Data, lookup, |_| Ok::<_, ()>(()));
            assert_eq!(checked, Ok(Some(0x1000)));
        };
        for generation in 1..4 {
            resolve(&ProcessImports::at(Some((u64::MAX - generation, 0))));
            assert!(!remembers(name), "written down under a changing generation");
        }
        let steady = Some((u64::MAX - 10, 0));
        let found_without_lookup = (0..1000).any(|_| {
            let _ = ProcessImports::at(steady);
            resolve(&ProcessImports::at(steady));
            let before = lookups.get();
            resolve(&ProcessImports::at(steady));
            lookups.get() == before
        });
        assert!(
            found_without_lookup,
            "never remembered under a steady generation"
        );
    }
}
