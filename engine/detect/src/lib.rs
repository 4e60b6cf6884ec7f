//! Warden's detection core: Sigma rules and threat indicators compiled into
//! one immutable matcher.
//!
//! ```
//! use warden_detect::{Engine, event};
//!
//! let mut builder = Engine::builder();
//! builder.add_yaml(
//!     "title: Mimikatz\nid: 11111111-2222-4333-8444-555555555555\nlevel: high\n\
//!      logsource: {product: windows}\n\
//!      detection:\n  sel:\n    CommandLine|contains: sekurlsa\n  condition: sel\n",
//!     std::path::Path::new("inline.yml"),
//! ).unwrap();
//! let engine = builder.build();
//! let mut scratch = engine.scratch();
//! let mut hits = Vec::new();
//! let ev = event::parse(br#"{"CommandLine": "mimikatz SEKURLSA::logonpasswords"}"#).unwrap();
//! engine.detect(&ev.doc(), &mut scratch, &mut hits);
//! assert_eq!(hits[0].rule.meta.title, "Mimikatz");
//! ```
//!
//! Layers, in the order data flows: [`sigma`] parses rule files,
//! [`compile`] applies modifiers and turns detections into predicate
//! expressions, [`index`] groups predicates per field into automata, and
//! [`engine`] routes events, walks them once and evaluates only the rules
//! whose predicates fired. [`indicators`] loads threat-intelligence feeds
//! into lookup tables.

pub mod compile;
pub mod derive;
pub mod engine;
mod error;
pub mod event;
pub mod gather;
pub mod glob;
pub mod index;
pub mod indicators;
pub mod ip;
pub mod json;
pub mod mapping;
pub mod placeholders;
pub mod predicate;
pub mod re;
mod sample;
mod shift_and;
pub mod sigma;
pub mod text;

pub use engine::{Engine, EngineBuilder, MatchedField, Rejection, RuleHit, RuleInfo, Scratch};
pub use error::{Error, Result};
pub use mapping::Mapping;
