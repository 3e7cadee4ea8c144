//! Blocking work over many logs (opening, closing) on a few threads: it is mostly waiting on
//! syncs, so a handful of threads make a thousand logs open in a fraction of the time.

/// Logs opened or closed at once.
pub(crate) const OPEN_THREADS: usize = 8;

/// `f` over `items` on up to `threads` threads, results in the order of `items`.
pub(crate) fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if items.len() <= 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads.max(1));
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("a log-opening thread panicked"))
            .collect()
    })
}
