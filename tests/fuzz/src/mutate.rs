//! Bodies from seeds: one to four stacked mutations, structure-aware ones (on the parsed JSON or
//! form) first and byte-level ones on the result, so that both deep semantic changes and broken
//! syntax reach the parsers. A few inputs stay unmutated, to keep the happy path in the mix.

pub mod bytes;
pub mod form;
pub mod json;

use crate::corpus::{Corpus, Seed, Shape};
use crate::rng::Rng;

use form::FormBody;
use json::Document;

/// A mutated copy of `seed`; byte-level splicing takes its tail from any seed of `corpus`.
pub fn body(rng: &mut Rng, seed: &Seed, corpus: &Corpus) -> Vec<u8> {
    let count = if rng.chance(5) { 0 } else { rng.between(1, 4) };
    let structural = (0..count).filter(|_| rng.chance(60)).count();
    let mut data = match &seed.shape {
        Shape::Json(value) if structural > 0 => {
            let mut document = Document::new(value.clone());
            for _ in 0..structural {
                document.mutate(rng);
            }
            document.into_bytes(rng)
        }
        Shape::Form if structural > 0 => {
            let mut form = FormBody::parse(&seed.bytes);
            for _ in 0..structural {
                form.mutate(rng);
            }
            form.into_bytes()
        }
        _ => seed.bytes.clone(),
    };
    for _ in structural..count {
        let other = corpus.any_body(rng);
        bytes::mutate(rng, &mut data, other);
    }
    data
}

/// A mutated copy of a JSON value, as text: how nested JSON (Slack's `payload` field) is made.
pub fn json_text(rng: &mut Rng, value: &serde_json::Value) -> Vec<u8> {
    let mut document = Document::new(value.clone());
    for _ in 0..rng.below(4) {
        document.mutate(rng);
    }
    let mut text = document.into_bytes(rng);
    if rng.chance(15) {
        bytes::mutate(rng, &mut text, b"{}");
    }
    text
}
