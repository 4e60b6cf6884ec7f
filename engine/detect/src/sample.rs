//! Sampled hit rates: a memo that rarely answers only costs its lookups
//! and evicts what does repeat, so its users sample how often it hits and
//! skip it for a while when it does not.

/// Lookups and hits in the current sample, and how many more lookups to
/// skip.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HitRate {
    tries: u16,
    hits: u16,
    bypass: u16,
}

impl HitRate {
    /// Whether to look up now. After every `sample` lookups, a sample with
    /// fewer than `min_hits` hits skips the next `bypass` ones.
    #[inline]
    pub(crate) fn wants(&mut self, sample: u16, min_hits: u16, bypass: u16) -> bool {
        if self.bypass > 0 {
            self.bypass -= 1;
            return false;
        }
        self.tries += 1;
        if self.tries == sample {
            if self.hits < min_hits {
                self.bypass = bypass;
            }
            self.tries = 0;
            self.hits = 0;
        }
        true
    }

    /// Counts a lookup that answered.
    #[inline]
    pub(crate) fn hit(&mut self) {
        self.hits += 1;
    }

    /// Hits in the current sample.
    #[cfg(test)]
    pub(crate) fn hits(&self) -> u16 {
        self.hits
    }
}
