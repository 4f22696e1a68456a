//! Order-preserving parallel map on scoped threads, for the two costs that grow with a stream:
//! reading every document, and parsing and patching each release.
//!
//! Why not rayon: a run lives a few milliseconds, and on the common input (one umbrella render)
//! there is nothing worth a second thread, so a pool that starts with the process would cost more
//! than it saves. Here threads exist only when there is enough work (`min_per_thread`), results
//! come back in input order, and the output is byte-identical whatever the thread count (a test
//! checks it by running with `RUNNER_PATCH_THREADS=1` and with several).

use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

/// Environment variable that sets the thread count (1 = never spawn a thread).
pub const THREADS_ENV: &str = "RUNNER_PATCH_THREADS";

/// Threads to use at most: `RUNNER_PATCH_THREADS`, else the CPUs available, capped at 8 (beyond
/// that the work is bound by memory bandwidth).
pub fn threads() -> usize {
    std::env::var(THREADS_ENV)
        .ok()
        .and_then(|v| v.parse::<NonZeroUsize>().ok())
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get)
        .min(8)
}

/// `items.into_iter().map(f).collect()`, spread over up to [`threads`] threads so that each gets
/// at least `min_per_thread` items on average. Items are moved into the threads (work can own and
/// change what it is given) and the results come back in input order.
///
/// Each thread takes the next item when it is done with one, rather than a fixed share: on a
/// shared VM one vCPU often runs slower than the other for a while, and a fixed half would leave
/// the faster one idle at the end.
pub fn map<T: Send, R: Send>(
    items: Vec<T>,
    min_per_thread: usize,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let count = items.len();
    let most = count / min_per_thread.max(1);
    // Asking for the CPU count reads cgroup files (a dozen system calls): only when it matters.
    let workers = if most < 2 { 1 } else { threads().min(most) };
    if workers == 1 {
        return items.into_iter().map(&f).collect();
    }
    let queue = Mutex::new(items.into_iter().enumerate());
    let next = || queue.lock().unwrap_or_else(PoisonError::into_inner).next();
    let (f, next) = (&f, &next);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(move || {
                    let mut out = Vec::new();
                    while let Some((i, item)) = next() {
                        out.push((i, f(item)));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    done.sort_unstable_by_key(|&(i, _)| i);
    debug_assert_eq!(done.len(), count);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_whatever_the_split() {
        let items: Vec<u32> = (0..1000).collect();
        for min in [1, 7, 500, 2000] {
            let out = super::map(items.clone(), min, |x| x * 2);
            assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        }
        assert!(super::map(Vec::<u32>::new(), 1, |x| x).is_empty());
    }
}
