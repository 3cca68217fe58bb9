//! The task stack the purge's workers share, on every OS: LIFO (which keeps the number of open dirs near the tree's
//! depth), with the count of tasks in flight, so that workers end when the stack is empty and nobody can add more.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use crate::interrupt::Interrupt;

pub(super) struct Queue<T> {
    /// The tasks waiting, and the tasks pushed but not yet done.
    tasks: Mutex<(Vec<T>, usize)>,
    ready: Condvar,
}

impl<T> Queue<T> {
    pub(super) fn new() -> Self {
        Queue { tasks: Mutex::new((Vec::new(), 0)), ready: Condvar::new() }
    }

    pub(super) fn push(&self, task: T) {
        let mut q = self.tasks.lock().expect("purge queue poisoned");
        q.0.push(task);
        q.1 += 1;
        drop(q);
        self.ready.notify_one();
    }

    /// The next task, waiting for one while others are in flight; `None` when all are done, or on an interrupt
    /// (which `stop` then tells every worker).
    pub(super) fn next(&self, interrupt: &Interrupt, stop: &AtomicBool) -> Option<T> {
        let mut q = self.tasks.lock().expect("purge queue poisoned");
        loop {
            if interrupt.is_set() || stop.load(Ordering::Relaxed) {
                stop.store(true, Ordering::Relaxed);
                self.ready.notify_all();
                return None;
            }
            if let Some(t) = q.0.pop() {
                return Some(t);
            }
            if q.1 == 0 {
                self.ready.notify_all();
                return None;
            }
            q = self.ready.wait(q).expect("purge queue poisoned");
        }
    }

    /// One task taken with [`Queue::next`] is done (after it pushed what it found).
    pub(super) fn done(&self) {
        let mut q = self.tasks.lock().expect("purge queue poisoned");
        q.1 -= 1;
        if q.1 == 0 {
            self.ready.notify_all();
        }
    }
}
