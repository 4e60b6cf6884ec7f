//! A raw-line filter for a keyword cover's substrings (see
//! [`super::keywords`]): each substring is told by two of its bytes,
//! compared 32 positions at a time with ASCII letters read without case.
//! This spares the lowercase copy of the line that the packed searcher
//! needs, which was half of the keyword check's cost.
//!
//! The line's bytes are ORed with 0x20 and compared with the substring's
//! byte ORed with 0x20. For a letter that is exactly its two cases; any
//! other byte also admits the one differing from it in that bit (`\` and
//! `|`, `:` and a control character), which is a false candidate at worst.
//! So wherever the ASCII-lowercased line holds a substring, both of its
//! probed bytes match: the filter reports a superset of the substrings'
//! starts, and the caller checks each.

/// Two bytes of one substring: their offsets in it, and their values
/// ORed with 0x20.
#[derive(Debug, Clone, Copy)]
struct Probe {
    at: [usize; 2],
    byte: [u8; 2],
}

/// At most this many substrings (a cover has at most four).
const MAX_PROBES: usize = 4;
/// Offsets of probed bytes are below this (substrings have at most four bytes).
const MAX_AT: usize = 4;

#[derive(Debug)]
pub(super) struct FoldedPairs {
    probes: Vec<Probe>,
}

impl FoldedPairs {
    /// A filter for `subs` (lowercase, two to four bytes each), picking in
    /// each the two bytes whose pairing is rarest in `sample` (a lowercased
    /// line of the events served). `None` when this CPU lacks AVX2 or the
    /// substrings do not fit.
    pub(super) fn new(subs: &[&[u8]], sample: &[u8]) -> Option<FoldedPairs> {
        if !avx2() || subs.is_empty() || subs.len() > MAX_PROBES {
            return None;
        }
        let count = |b: u8| sample.iter().filter(|&&c| c == b).count();
        let mut probes = Vec::new();
        for s in subs {
            // Printable ASCII (as keywords are), lowercase.
            let printable = s.iter().all(|c| (0x20..0x7f).contains(c));
            if s.len() < 2 || s.len() > MAX_AT || !printable || s.iter().any(u8::is_ascii_uppercase)
            {
                return None;
            }
            let mut best: Option<((usize, usize, usize), [usize; 2])> = None;
            for a in 0..s.len() {
                for b in a + 1..s.len() {
                    let together = sample
                        .windows(b + 1)
                        .filter(|w| w[a] == s[a] && w[b] == s[b])
                        .count();
                    let key = (together, count(s[a]) + count(s[b]), b);
                    if best.is_none_or(|(k, _)| key < k) {
                        best = Some((key, [a, b]));
                    }
                }
            }
            let (_, at) = best?;
            probes.push(Probe {
                at,
                byte: at.map(|i| s[i] | 0x20),
            });
        }
        Some(FoldedPairs { probes })
    }

    /// Whether `check` holds at some position of `hay` where a substring's
    /// two probed bytes occur (every such position, in order, until one
    /// holds).
    pub(super) fn any(&self, hay: &[u8], check: impl FnMut(usize) -> bool) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `new` only builds a filter when the CPU has AVX2.
            #[allow(unsafe_code)]
            unsafe {
                any_avx2(&self.probes, hay, check)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (hay, check);
            unreachable!("built only with AVX2")
        }
    }
}

pub(super) fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Bytes read per block beyond its 32 positions (the largest offset).
const SPILL: usize = MAX_AT - 1;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
unsafe fn any_avx2(probes: &[Probe], hay: &[u8], check: impl FnMut(usize) -> bool) -> bool {
    // SAFETY (all four): the caller has checked that the CPU has AVX2.
    unsafe {
        match probes.len() {
            1 => scan_avx2::<1>(probes, hay, check),
            2 => scan_avx2::<2>(probes, hay, check),
            3 => scan_avx2::<3>(probes, hay, check),
            _ => scan_avx2::<4>(probes, hay, check),
        }
    }
}

/// [`any_avx2`] for `N` probes (the first `N` of `probes`), so that the
/// needles stay in registers and the probe loop unrolls.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
unsafe fn scan_avx2<const N: usize>(
    probes: &[Probe],
    hay: &[u8],
    mut check: impl FnMut(usize) -> bool,
) -> bool {
    use std::arch::x86_64::{
        __m256i, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8, _mm256_setzero_si256,
    };
    let zero = _mm256_setzero_si256();
    let fold = _mm256_set1_epi8(0x20);
    // Per probe and byte: its offset and the needle.
    let probe: [[(usize, __m256i); 2]; N] = std::array::from_fn(|i| {
        let p = &probes[i];
        std::array::from_fn(|k| (p.at[k].min(SPILL), _mm256_set1_epi8(p.byte[k] as i8)))
    });
    let n = hay.len();
    let mut pad = [0u8; 32 + SPILL];
    let mut i = 0;
    while i < n {
        let base = if i + 32 + SPILL <= n {
            hay[i..].as_ptr()
        } else {
            // The tail, padded with a byte no needle (printable ASCII)
            // has, even ORed with 0x20.
            let rest = &hay[i..];
            pad[..rest.len()].copy_from_slice(rest);
            pad[rest.len()..].fill(0xff);
            pad.as_ptr()
        };
        let mut m = zero;
        for pr in &probe {
            // SAFETY: `base` has 32 + SPILL readable bytes (checked above,
            // or the pad) and each offset is at most SPILL; loadu has no
            // alignment requirement.
            let [a, b] = pr.map(|(at, needle)| unsafe {
                let v = _mm256_loadu_si256(base.add(at).cast());
                _mm256_cmpeq_epi8(_mm256_or_si256(v, fold), needle)
            });
            m = _mm256_or_si256(m, _mm256_and_si256(a, b));
        }
        let mut mask = _mm256_movemask_epi8(m) as u32;
        while mask != 0 {
            let p = i + mask.trailing_zeros() as usize;
            if check(p) {
                return true;
            }
            mask &= mask - 1;
        }
        i += 32;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::FoldedPairs;
    use warden_gen::Rng;

    /// Every position where the ASCII-lowercased line holds a substring
    /// is a candidate (the filter may add others, never drop one): lines of
    /// every length around the 32-byte blocks, letters in either case, and
    /// the bytes that share all but bit 0x20 with a substring's (`|` for
    /// `\`, `[` for `{`).
    #[test]
    fn candidates_include_every_start_of_a_substring() {
        if !super::avx2() {
            eprintln!("skipped: this CPU has no AVX2, so the filter is never built");
            return;
        }
        let mut g = Rng::new(5);
        let alphabet = b"abkmiwAKMIW:.\\|{[ -0";
        let (mut found, mut extra, mut positions) = (0, 0, 0);
        for round in 0..600 {
            let subs: Vec<Vec<u8>> = (0..1 + g.below(4))
                .map(|_| {
                    (0..2 + g.below(3))
                        .map(|_| alphabet[g.below(alphabet.len())].to_ascii_lowercase())
                        .collect()
                })
                .collect();
            let sample: Vec<u8> = (0..g.below(60))
                .map(|_| alphabet[g.below(alphabet.len())].to_ascii_lowercase())
                .collect();
            let refs: Vec<&[u8]> = subs.iter().map(Vec::as_slice).collect();
            let f = FoldedPairs::new(&refs, &sample).expect("AVX2 and short substrings");
            for _ in 0..20 {
                let n = g.below(140);
                let mut hay: Vec<u8> = (0..n).map(|_| alphabet[g.below(alphabet.len())]).collect();
                // Now and then a substring, in random case, near a block edge.
                if n > 8 && g.below(2) == 0 {
                    let s = &subs[g.below(subs.len())];
                    let at = [0, 29, 30, 31, 32, 33, 63, n - s.len()][g.below(8)].min(n - s.len());
                    for (k, &c) in s.iter().enumerate() {
                        hay[at + k] = if g.below(2) == 0 {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        };
                    }
                }
                let lower = hay.to_ascii_lowercase();
                let starts: Vec<usize> = (0..n)
                    .filter(|&p| subs.iter().any(|s| lower[p..].starts_with(s)))
                    .collect();
                let mut seen = Vec::new();
                let stopped = f.any(&hay, |p| {
                    seen.push(p);
                    false
                });
                assert!(!stopped);
                assert!(
                    starts.iter().all(|p| seen.contains(p)),
                    "round {round}: {subs:?} in {hay:?}: starts {starts:?}, candidates {seen:?}"
                );
                assert!(seen.iter().all(|&p| p < n), "candidate past the end");
                assert!(seen.windows(2).all(|w| w[0] < w[1]), "candidates in order");
                // It stops at the first position the check accepts.
                if let Some(&first) = starts.first() {
                    let mut calls = Vec::new();
                    assert!(f.any(&hay, |p| {
                        calls.push(p);
                        starts.contains(&p)
                    }));
                    assert_eq!(calls.last(), Some(&first));
                }
                found += starts.len();
                positions += n;
                extra += seen.len() - starts.len();
            }
        }
        assert!(found > 3_000, "{found} substring starts");
        // Two probed bytes rule out nearly every other position, even in
        // lines of twenty distinct bytes.
        assert!(
            extra * 20 < positions,
            "{extra} false candidates in {positions} positions"
        );
    }

    #[test]
    fn substrings_that_do_not_fit_are_refused() {
        let sample = b"{\"eventid\":1}";
        assert!(FoldedPairs::new(&[b"abcde"], sample).is_none());
        assert!(FoldedPairs::new(&[b"a"], sample).is_none());
        assert!(FoldedPairs::new(&[b"ab", b"cd", b"ef", b"gh", b"ij"], sample).is_none());
        assert!(FoldedPairs::new(&[], sample).is_none());
        assert!(FoldedPairs::new(&[b"a\xff"], sample).is_none());
    }
}
