//! Function handles that survive reloads: one always calls the current version, one is
//! pinned to a version and keeps it alive.

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use crate::module::Module;
use crate::reclaim::{Epoch, PinGuard};
use crate::slots::Slot;

/// A handle that always calls the current version of a function of a reloadable module.
///
/// It holds the function's slot, whose trampoline never moves and which the registry
/// retargets at each reload; the slot keeps the version it points into mapped, so the handle
/// stays callable after the module is unloaded or the registry dropped (it then calls the
/// last version the registry had).
pub struct Current<F> {
    slot: Arc<Slot>,
    epoch: Arc<Epoch>,
    _f: PhantomData<F>,
}

// SAFETY: the handle is an address plus Arcs of thread-safe types; calling through it from
// any thread is what the module's function allows, which the creator of the handle vouched
// for (`F`).
unsafe impl<F> Send for Current<F> {}
// SAFETY: as above; shared access only reads the address.
unsafe impl<F> Sync for Current<F> {}

impl<F: Copy> Current<F> {
    /// # Safety
    /// `F` must be a pointer-sized function pointer type matching the function behind
    /// `slot` in every version.
    pub(crate) unsafe fn new(slot: Arc<Slot>, epoch: Arc<Epoch>) -> Current<F> {
        Current {
            slot,
            epoch,
            _f: PhantomData,
        }
    }

    /// The function, callable while the returned value lives; the current thread is pinned
    /// meanwhile, so the version it reaches cannot be freed under it.
    ///
    /// The `F` inside can be copied out (it is a plain function pointer); a copy called after
    /// the handle is dropped, or from another thread not pinned by [`Registry::pin`]
    /// (crate::Registry::pin), may reach a version that was freed.
    pub fn pin(&self) -> CurrentCall<'_, F> {
        // SAFETY: `F` is a pointer-sized function pointer type (the constructor's contract)
        // and the trampoline stays mapped while `self` holds the slot.
        let f = unsafe { std::mem::transmute_copy::<usize, F>(&self.slot.trampoline()) };
        CurrentCall {
            f,
            _guard: self.epoch.pin(),
            _handle: PhantomData,
        }
    }

    /// The trampoline's address: it reaches the current version for as long as this handle
    /// lives. Calls through it are protected only while the thread is pinned
    /// ([`Current::pin`], [`Registry::pin`](crate::Registry::pin)).
    pub fn address(&self) -> usize {
        self.slot.trampoline()
    }
}

/// A pinned call of a [`Current`] handle.
pub struct CurrentCall<'h, F> {
    f: F,
    _guard: PinGuard,
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
    /// As for [`Module::get`]: `F` must match the function's signature, and calls that can
    /// reach a reloadable module through a slot while it is reloaded must be made while the
    /// thread is pinned ([`Registry::pin`](crate::Registry::pin)): the handle keeps its own
    /// version mapped, not the versions of other modules it calls into. The `F` the handle
    /// dereferences to can be copied out; a copy called after the handle and every other
    /// holder of the module are dropped calls unmapped memory.
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
