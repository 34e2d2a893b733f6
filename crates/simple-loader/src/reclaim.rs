//! When an old version of a reloadable module is freed, and by which thread.
//!
//! A reload retargets the slots of a module while other threads may be running the old
//! version: they entered it through a slot just before the swap. Those threads are *pinned*
//! (by [`Current::pin`](crate::Current::pin) or [`Registry::pin`](crate::Registry::pin)),
//! and the registry's reference to the old version is handed to its [`Reclaimer`], an epoch
//! collector that belongs to the registry alone (not crossbeam's process-wide one, which every
//! other user of crossbeam in the process shares). Once every thread that was pinned at the
//! swap has unpinned, the old version moves to the reclaimer's *ready* list; it is dropped —
//! its destructors run and its pages are unmapped — by the next thread that calls
//! [`Reclaimer::collect`]: one doing a registry operation (load, reload, unload, `collect`),
//! never a thread inside `pin`, and never a thread of another library's pool.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, Weak};

use crossbeam_epoch::{Collector, LocalHandle};

use crate::module::Module;

/// The epoch collector of one registry, and the old versions whose grace period is over.
#[derive(Debug)]
pub(crate) struct Reclaimer {
    collector: Collector,
    /// Old versions no pinned thread can be running, waiting for a registry operation to drop
    /// them.
    ready: Mutex<Vec<Arc<Module>>>,
}

impl Default for Reclaimer {
    fn default() -> Self {
        Reclaimer {
            collector: Collector::new(),
            ready: Mutex::new(Vec::new()),
        }
    }
}

/// Marks the calling thread as possibly running code of a registry's reloadable modules,
/// until it is dropped: no version the thread may be running is freed meanwhile.
///
/// It cannot be sent to another thread: it pins the thread that made it.
#[must_use = "the thread is pinned only while the guard lives"]
pub struct PinGuard {
    _guard: crossbeam_epoch::Guard,
}

impl std::fmt::Debug for PinGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinGuard")
    }
}

thread_local! {
    /// This thread's participation in each collector it has pinned, so that a pin costs a
    /// short scan instead of a registration. Entries of reclaimers that are gone are dropped
    /// at the next pin.
    static HANDLES: RefCell<Vec<(Weak<Reclaimer>, LocalHandle)>> = const { RefCell::new(Vec::new()) };
}

impl Reclaimer {
    /// Pins the calling thread in this reclaimer's collector.
    pub(crate) fn pin(self: &Arc<Self>) -> PinGuard {
        let pinned = HANDLES.try_with(|handles| {
            let mut handles = handles.borrow_mut();
            // Participations in collectors whose reclaimer is gone leave the list now but are
            // dropped below, after the borrow ends: dropping the last one frees the collector,
            // which runs what was left in it, old modules' destructors included, and those may
            // pin another registry on this thread.
            let (live, dead): (Vec<_>, Vec<_>) = std::mem::take(&mut *handles)
                .into_iter()
                .partition(|(owner, _)| owner.strong_count() > 0);
            *handles = live;
            let position = handles
                .iter()
                .position(|(owner, _)| std::ptr::eq(owner.as_ptr(), Arc::as_ptr(self)));
            let index = position.unwrap_or_else(|| {
                handles.push((Arc::downgrade(self), self.collector.register()));
                handles.len() - 1
            });
            // Pinning may run deferred functions of this collector; they only move modules
            // to `ready` (see `retire`), so nothing here re-enters `HANDLES`.
            (handles[index].1.pin(), dead)
        });
        let guard = match pinned {
            Ok((guard, dead)) => {
                drop(dead);
                guard
            }
            // While the thread's locals are being destroyed: a participation for this pin only.
            Err(_) => self.collector.register().pin(),
        };
        PinGuard { _guard: guard }
    }

    /// Hands the registry's reference to an old version over: it is dropped by a later
    /// [`collect`](Self::collect) once no thread pinned now can be running it.
    pub(crate) fn retire(self: &Arc<Self>, old: Arc<Module>) {
        let owner = Arc::downgrade(self);
        self.pin()._guard.defer(move || match owner.upgrade() {
            Some(reclaimer) => reclaimer
                .ready
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(old),
            // The reclaimer is being dropped with its registry: no registry operation will
            // come, and the collector runs what is left as it goes.
            None => drop(old),
        });
    }

    /// Moves the versions whose grace period is over to the ready list and drops them all on
    /// the calling thread, which must not hold a registry's lock (their destructors run).
    pub(crate) fn collect(self: &Arc<Self>) {
        // An epoch advances only once every pinned thread has seen the last one, and garbage
        // is freed two epochs after it was retired: a few attempts free what can be freed.
        for _ in 0..3 {
            self.pin()._guard.flush();
        }
        let ready = std::mem::take(&mut *self.ready.lock().unwrap_or_else(|p| p.into_inner()));
        // Last loaded first, as a native loader closes objects.
        for module in ready.into_iter().rev() {
            drop(module);
        }
    }
}
