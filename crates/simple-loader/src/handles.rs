//! Function handles that survive reloads: one always calls the current version, one is
//! pinned to a version and keeps it alive.

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use crossbeam_epoch::Guard;

use crate::module::Module;
use crate::slots::SlotTable;

/// Marks the calling thread as possibly running module code reached through reload slots,
/// until the returned guard drops. An old version replaced by a reload is freed only after
/// every thread that held such a guard at the time of the swap has dropped it.
///
/// [`Current::pin`] takes one for you; take one yourself around calls into modules made by
/// other means (for example [`Module::get`] on a module that calls a reloadable one).
pub fn pin() -> Guard {
    crossbeam_epoch::pin()
}

/// A handle that always calls the current version of a function of a reloadable module.
///
/// It holds the address of the function's trampoline, which never changes; the registry
/// retargets it at each reload.
pub struct Current<F> {
    trampoline: usize,
    _slots: Arc<SlotTable>,
    _f: PhantomData<F>,
}

// SAFETY: the handle is an address plus an Arc; calling through it from any thread is what
// the module's function allows, which the creator of the handle vouched for (`F`).
unsafe impl<F> Send for Current<F> {}
// SAFETY: as above; shared access only reads the address.
unsafe impl<F> Sync for Current<F> {}

impl<F: Copy> Current<F> {
    /// # Safety
    /// `F` must be a pointer-sized function pointer type matching the function behind
    /// `trampoline` in every version.
    pub(crate) unsafe fn new(trampoline: usize, slots: Arc<SlotTable>) -> Current<F> {
        Current {
            trampoline,
            _slots: slots,
            _f: PhantomData,
        }
    }

    /// The function, callable while the returned value lives; the current thread is pinned
    /// meanwhile, so the version it reaches cannot be freed under it.
    pub fn pin(&self) -> CurrentCall<'_, F> {
        // SAFETY: `F` is a pointer-sized function pointer type (the constructor's contract)
        // and the trampoline stays mapped while `self` holds the slots.
        let f = unsafe { std::mem::transmute_copy::<usize, F>(&self.trampoline) };
        CurrentCall {
            f,
            _guard: pin(),
            _handle: PhantomData,
        }
    }

    /// The trampoline's address: a function pointer that stays valid, and reaches the
    /// current version, for as long as the registry's slots live.
    pub fn address(&self) -> usize {
        self.trampoline
    }
}

/// A pinned call of a [`Current`] handle.
pub struct CurrentCall<'h, F> {
    f: F,
    _guard: Guard,
    _handle: PhantomData<&'h ()>,
}

impl<F> Deref for CurrentCall<'_, F> {
    type Target = F;
    fn deref(&self) -> &F {
        &self.f
    }
}

/// A handle to a function of one specific version of a module; the version stays mapped
/// while the handle lives, whatever reloads happen.
pub struct Pinned<F> {
    f: F,
    module: Arc<Module>,
}

// SAFETY: see `Current`; the Arc<Module> is Send + Sync.
unsafe impl<F> Send for Pinned<F> {}
// SAFETY: see `Current`.
unsafe impl<F> Sync for Pinned<F> {}

impl<F: Copy> Pinned<F> {
    /// A handle to `name` in `module`.
    ///
    /// # Safety
    /// As for [`Module::get`]: `F` must match the function's signature.
    pub unsafe fn new(module: Arc<Module>, name: &str) -> Result<Pinned<F>, crate::LoadError> {
        // SAFETY: the caller's contract.
        let f = *unsafe { module.get::<F>(name)? };
        Ok(Pinned { f, module })
    }

    /// The version this handle keeps alive.
    pub fn module(&self) -> &Arc<Module> {
        &self.module
    }
}

impl<F> Deref for Pinned<F> {
    type Target = F;
    fn deref(&self) -> &F {
        &self.f
    }
}
