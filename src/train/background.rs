//! Awaitable training for async applications: the blocking work runs on its own thread and
//! the returned future completes when it is done, so an executor thread is never blocked on
//! the GPU. (wgpu's own futures need someone to poll the device; a dedicated thread that
//! blocks in that poll is the simplest correct way to offer an `async` API over it.)

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

struct Shared<T> {
    result: Option<T>,
    waker: Option<Waker>,
}

/// A value computed on a background thread; `.await` it (or `pollster::block_on` it).
pub struct Background<T> {
    shared: Arc<Mutex<Shared<T>>>,
}

/// Runs `work` on a new thread and returns a future of its result.
pub fn spawn<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Background<T> {
    let shared = Arc::new(Mutex::new(Shared { result: None, waker: None }));
    let theirs = Arc::clone(&shared);
    std::thread::spawn(move || {
        let value = work();
        if let Ok(mut s) = theirs.lock() {
            s.result = Some(value);
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
    });
    Background { shared }
}

impl<T> Future for Background<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        // A poisoned lock means the worker panicked while storing: nothing will arrive, but
        // the lock still holds whatever was stored before.
        let mut s = match self.shared.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        match s.result.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
