//! When an old version of a reloadable module is freed, and by which thread.
//!
//! A reload retargets the slots of a module while other threads may be running the old
//! version: they entered it through a slot just before the swap. Those threads are *pinned*
//! (by [`Current::pin`](crate::Current::pin) or [`Registry::pin`](crate::Registry::pin)),
//! and the registry's reference to the old version is handed to its [`Reclaimer`], over an
//! epoch collector that belongs to the registry alone (not crossbeam's process-wide one, which
//! every other user of crossbeam in the process shares). Once every thread that was pinned at
//! the swap has unpinned, the old version moves to the reclaimer's *ready* list; it is
//! dropped — its destructors run and its pages are unmapped — by the next thread that calls
//! [`Reclaimer::collect`]: one doing a registry operation (reload, unload, `collect`), never
//! a thread inside `pin`, and never a thread of another library's pool. Once the registry is
//! gone, what is still waiting is dropped by the thread that finds its grace period over.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex, Weak};

use crossbeam_epoch::{Collector, LocalHandle};

use crate::module::Module;

/// The epoch collector of one registry: what threads pin. Handles that pin (`Current`) hold
/// it, not the reclaimer.
#[derive(Debug, Default)]
pub(crate) struct Epoch {
    collector: Collector,
}

/// A registry's reclamation of old versions: its epoch, and the versions whose grace period
/// is over, waiting for a registry operation to drop them. Generic for its tests.
#[derive(Debug)]
pub(crate) struct Reclaimer<T: Send + 'static = Arc<Module>> {
    epoch: Arc<Epoch>,
    ready: Arc<Mutex<Vec<T>>>,
}

impl<T: Send + 'static> Default for Reclaimer<T> {
    fn default() -> Self {
        Reclaimer {
            epoch: Arc::default(),
            ready: Arc::default(),
        }
    }
}

/// Marks the calling thread as possibly running code of a registry's reloadable modules,
/// until it is dropped: no version the thread may be running is freed meanwhile.
///
/// It cannot be sent to another thread: it pins the thread that made it.
#[must_use = "the thread is pinned only while the guard lives"]
pub struct PinGuard {
    guard: crossbeam_epoch::Guard,
}

impl std::fmt::Debug for PinGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinGuard")
    }
}

thread_local! {
    /// This thread's participation in each collector it has pinned, so that a pin costs a
    /// short scan instead of a registration. Entries of collectors that are gone leave at the
    /// next pin.
    static HANDLES: RefCell<Vec<(Weak<Epoch>, Rc<LocalHandle>)>> = const { RefCell::new(Vec::new()) };
}

impl Epoch {
    /// Pins the calling thread in this collector.
    pub(crate) fn pin(self: &Arc<Self>) -> PinGuard {
        let found = HANDLES.try_with(|handles| {
            let mut handles = handles.borrow_mut();
            // Almost always none are dead: then nothing is allocated on this path (every
            // `Current::pin` takes it).
            let mut dead = Vec::new();
            if handles.iter().any(|(owner, _)| owner.strong_count() == 0) {
                let (live, gone) = std::mem::take(&mut *handles)
                    .into_iter()
                    .partition(|(owner, _)| owner.strong_count() > 0);
                *handles = live;
                dead = gone;
            }
            let handle = match handles
                .iter()
                .find(|(owner, _)| std::ptr::eq(owner.as_ptr(), Arc::as_ptr(self)))
            {
                Some((_, handle)) => Rc::clone(handle),
                None => {
                    let handle = Rc::new(self.collector.register());
                    handles.push((Arc::downgrade(self), Rc::clone(&handle)));
                    handle
                }
            };
            (handle, dead)
        });
        // Pinning and dropping participations may run deferred work (old versions of a
        // registry that is gone are dropped there, their destructors included), which may pin
        // again on this thread: neither happens while `HANDLES` is borrowed.
        let guard = match found {
            Ok((handle, dead)) => {
                drop(dead);
                handle.pin()
            }
            // While the thread's locals are being destroyed: a participation for this pin only.
            Err(_) => self.collector.register().pin(),
        };
        PinGuard { guard }
    }
}

impl<T: Send + 'static> Reclaimer<T> {
    /// The collector, for handles that pin it.
    pub(crate) fn epoch(&self) -> &Arc<Epoch> {
        &self.epoch
    }

    pub(crate) fn pin(&self) -> PinGuard {
        self.epoch.pin()
    }

    /// Hands the registry's reference to an old version over: it is dropped by a later
    /// [`collect`](Self::collect) once no thread pinned now can be running it.
    pub(crate) fn retire(&self, old: T) {
        let ready = Arc::downgrade(&self.ready);
        self.pin().guard.defer(move || match ready.upgrade() {
            Some(ready) => ready.lock().unwrap_or_else(|p| p.into_inner()).push(old),
            // The registry is gone: no registry operation will come to drop it.
            None => drop(old),
        });
    }

    /// Moves the versions whose grace period is over to the ready list and drops them all on
    /// the calling thread, which must not hold a registry's lock (their destructors run).
    pub(crate) fn collect(&self) {
        // An epoch advances only once every pinned thread has seen the last one, garbage is
        // freed two epochs after it was retired, and one attempt frees a few batches of it:
        // attempt until eight in a row free nothing more (what is left waits for a thread
        // pinned since before it was retired).
        let ready_len = || self.ready.lock().unwrap_or_else(|p| p.into_inner()).len();
        let mut idle = 0;
        while idle < 8 {
            let before = ready_len();
            self.pin().guard.flush();
            idle = if ready_len() > before { 0 } else { idle + 1 };
        }
        let ready = std::mem::take(&mut *self.ready.lock().unwrap_or_else(|p| p.into_inner()));
        // Last retired first, as a native loader closes objects.
        for old in ready.into_iter().rev() {
            drop(old);
        }
    }
}

impl<T: Send + 'static> Drop for Reclaimer<T> {
    /// What no pinned thread can be running is dropped now, on the thread dropping the
    /// registry, rather than by whichever thread next pins (or exits holding a participation
    /// in the collector).
    fn drop(&mut self) {
        self.collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::thread::ThreadId;

    /// Records the thread that drops it.
    struct Old(Arc<Mutex<Vec<ThreadId>>>);

    impl Drop for Old {
        fn drop(&mut self) {
            self.0.lock().unwrap().push(std::thread::current().id());
        }
    }

    /// Another thread, pinned in `epoch` until released.
    struct PinnedElsewhere {
        release: mpsc::Sender<()>,
        thread: std::thread::JoinHandle<()>,
    }

    impl PinnedElsewhere {
        fn new(epoch: &Arc<Epoch>) -> Self {
            let (pinned_tx, pinned_rx) = mpsc::channel();
            let (release, release_rx) = mpsc::channel::<()>();
            let epoch = Arc::clone(epoch);
            let thread = std::thread::spawn(move || {
                let _pinned = epoch.pin();
                pinned_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            });
            pinned_rx.recv().unwrap();
            PinnedElsewhere { release, thread }
        }

        fn release(self) {
            self.release.send(()).unwrap();
            self.thread.join().unwrap();
        }
    }

    #[test]
    fn an_old_version_waits_for_pinned_threads_and_is_dropped_by_collect() {
        let reclaimer = Reclaimer::<Old>::default();
        let dropped = Arc::new(Mutex::new(Vec::new()));
        let caller = PinnedElsewhere::new(reclaimer.epoch());
        reclaimer.retire(Old(Arc::clone(&dropped)));
        reclaimer.collect();
        assert!(
            dropped.lock().unwrap().is_empty(),
            "a thread pinned at the swap may still run it"
        );
        caller.release();
        reclaimer.collect();
        assert_eq!(
            *dropped.lock().unwrap(),
            [std::thread::current().id()],
            "dropped once, by the collecting thread"
        );
    }

    #[test]
    fn pinning_never_drops_an_old_version_while_the_reclaimer_lives() {
        let reclaimer = Reclaimer::<Old>::default();
        let dropped = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..4 {
            reclaimer.retire(Old(Arc::clone(&dropped)));
        }
        // Pins collect now and then (every 128th): what they find goes to the ready list.
        let epoch = Arc::clone(reclaimer.epoch());
        std::thread::spawn(move || {
            for _ in 0..1_000 {
                drop(epoch.pin());
            }
        })
        .join()
        .unwrap();
        assert!(dropped.lock().unwrap().is_empty());
        reclaimer.collect();
        assert_eq!(dropped.lock().unwrap().len(), 4);
    }

    #[test]
    fn one_collect_frees_a_backlog_once_its_pinned_thread_is_gone() {
        let reclaimer = Reclaimer::<Old>::default();
        let dropped = Arc::new(Mutex::new(Vec::new()));
        let caller = PinnedElsewhere::new(reclaimer.epoch());
        for _ in 0..200 {
            reclaimer.retire(Old(Arc::clone(&dropped)));
            reclaimer.collect();
        }
        assert!(dropped.lock().unwrap().is_empty());
        caller.release();
        reclaimer.collect();
        assert_eq!(dropped.lock().unwrap().len(), 200);
    }

    #[test]
    fn dropping_the_reclaimer_frees_what_no_thread_is_pinned_in() {
        let reclaimer = Reclaimer::<Old>::default();
        let dropped = Arc::new(Mutex::new(Vec::new()));
        let pinned = reclaimer.pin();
        reclaimer.retire(Old(Arc::clone(&dropped)));
        reclaimer.collect();
        assert!(dropped.lock().unwrap().is_empty(), "this thread is pinned");
        drop(pinned);
        drop(reclaimer);
        assert_eq!(*dropped.lock().unwrap(), [std::thread::current().id()]);
    }

    #[test]
    fn what_waits_when_the_reclaimer_goes_is_dropped_once() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        struct Counted;
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::SeqCst);
            }
        }
        let reclaimer = Reclaimer::<Counted>::default();
        let epoch = Arc::clone(reclaimer.epoch());
        let pinned = epoch.pin();
        reclaimer.retire(Counted);
        drop(reclaimer);
        drop(pinned);
        // The handle that outlives the reclaimer keeps pinning; the collector frees what was
        // left when its last participant goes.
        for _ in 0..1_000 {
            drop(epoch.pin());
        }
        drop(epoch);
        HANDLES.with(|handles| handles.borrow_mut().clear());
        assert_eq!(DROPS.load(Ordering::SeqCst), 1);
    }
}
