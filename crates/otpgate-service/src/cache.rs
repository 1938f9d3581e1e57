//! A per-node copy of a small table the hot path reads (event handlers, blocked prefixes):
//! reused for [`TTL`] of real time, so other nodes' changes take effect within it; this
//! node's own changes clear it at once. Real time, not the service clock: it is a cache, not
//! a rule.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a copy is reused.
pub const TTL: Duration = Duration::from_secs(2);

/// The last copy read, with the time it was read.
#[derive(Debug)]
pub struct Cached<T>(Mutex<Option<(Instant, Arc<T>)>>);

impl<T> Default for Cached<T> {
    fn default() -> Self {
        Self(Mutex::new(None))
    }
}

impl<T> Cached<T> {
    /// The copy, read with `load` when there is none younger than [`TTL`].
    pub async fn get_or_load<E>(
        &self,
        load: impl Future<Output = Result<T, E>>,
    ) -> Result<Arc<T>, E> {
        let now = Instant::now();
        if let Ok(c) = self.0.lock()
            && let Some((at, value)) = c.as_ref()
            && now.duration_since(*at) < TTL
        {
            return Ok(value.clone());
        }
        let value = Arc::new(load.await?);
        if let Ok(mut c) = self.0.lock() {
            *c = Some((now, value.clone()));
        }
        Ok(value)
    }

    /// Forgets the copy (after a change on this node).
    pub fn clear(&self) {
        if let Ok(mut c) = self.0.lock() {
            *c = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_copy_is_reused_until_cleared() {
        let c: Cached<u32> = Cached::default();
        let v = c.get_or_load(async { Ok::<_, ()>(1) }).await.unwrap();
        assert_eq!(*v, 1);
        let v = c.get_or_load(async { Ok::<_, ()>(2) }).await.unwrap();
        assert_eq!(*v, 1, "reused");
        c.clear();
        let v = c.get_or_load(async { Ok::<_, ()>(3) }).await.unwrap();
        assert_eq!(*v, 3);
        assert!(
            c.get_or_load(async { Err::<u32, _>(()) }).await.is_ok(),
            "still cached"
        );
    }
}
