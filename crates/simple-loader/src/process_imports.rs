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

static FOUND: Mutex<Option<Found>> = Mutex::new(None);

/// The process scope as one load sees it: its generation, read once.
pub(crate) struct ProcessImports {
    scope: crate::sys::ProcessScope,
    generation: Option<(u64, u64)>,
}

impl ProcessImports {
    pub(crate) fn new() -> ProcessImports {
        ProcessImports {
            scope: crate::sys::ProcessScope::new(),
            generation: crate::sys::loaded_objects_generation(),
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
        let Some(generation) = self.generation else {
            return self
                .scope
                .lookup(name)
                .map(|a| check(a).map(|()| a))
                .transpose();
        };
        let bit = kind_bit(kind);
        let remembered = lock()
            .as_ref()
            .filter(|found| found.generation == generation)
            .and_then(|found| found.addresses.get(name).copied());
        let address = match remembered {
            Some((address, kinds)) if kinds & bit != 0 => return Ok(Some(address)),
            Some((address, _)) => address,
            None => match self.scope.lookup(name) {
                Some(address) => address,
                None => return Ok(None),
            },
        };
        check(address)?;
        let mut found = lock();
        let found = found.get_or_insert_with(|| Found {
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

fn lock() -> std::sync::MutexGuard<'static, Option<Found>> {
    // What is remembered stays consistent if a holder panicked: each update is one insert.
    FOUND
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

const _: () = assert!(ImportKind::ALL.len() <= 8, "a kind set is a u8");

/// The bit of `kind` in [`Found::addresses`]' kind sets.
fn kind_bit(kind: ImportKind) -> u8 {
    let position = ImportKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
    1 << position
}
