//! Shrinks a failing case to a small one that fails the same way (same panic location, or same
//! broken invariant), so that the report names a minimal input its owner can read.
//!
//! Greedy chunk removal over each part of the case in turn: the header list, the body, each
//! header value; for hydration the reply list, each reply's body and headers, and the event's
//! attrs. Bounded by a budget of calls, since each attempt runs the parser.

use mecha_plugin_sdk::source::Request;

use crate::campaign;
use crate::targets::{Case, Hydration, Target};

/// Enough attempts to cut a 30 KB body to a few bytes, few enough to take seconds.
const BUDGET: usize = 20_000;

/// A smaller version of `case` that still fails with `failure` (see `Verdict::failure`).
pub fn shrink(target: &Target, case: &Case, failure: &str) -> Case {
    let fails = |candidate: &Case| {
        campaign::execute(target, candidate).failure().as_deref() == Some(failure)
    };
    let mut budget = BUDGET;
    match case {
        Case::Delivery { request, now_unix } => {
            let now_unix = *now_unix;
            let mut request = request.clone();
            let with = |request: &Request| Case::Delivery {
                request: request.clone(),
                now_unix,
            };
            let mut headers = request.headers.clone();
            remove_chunks(&mut headers, &mut budget, |headers| {
                fails(&with(&Request {
                    headers: headers.to_vec(),
                    ..request.clone()
                }))
            });
            request.headers = headers;
            let mut body = request.body.clone();
            remove_chunks(&mut body, &mut budget, |body| {
                fails(&with(&Request {
                    body: body.to_vec(),
                    ..request.clone()
                }))
            });
            request.body = body;
            for at in 0..request.headers.len() {
                let mut value: Vec<char> = request.headers[at].value.chars().collect();
                remove_chunks(&mut value, &mut budget, |value| {
                    let mut candidate = request.clone();
                    candidate.headers[at].value = value.iter().collect();
                    fails(&with(&candidate))
                });
                request.headers[at].value = value.into_iter().collect();
            }
            with(&request)
        }
        Case::Hydration(hydration) => {
            Case::Hydration(shrink_hydration(hydration, &mut budget, &|candidate| {
                fails(&Case::Hydration(candidate.clone()))
            }))
        }
    }
}

fn shrink_hydration(
    hydration: &Hydration,
    budget: &mut usize,
    fails: &dyn Fn(&Hydration) -> bool,
) -> Hydration {
    let mut current = hydration.clone();
    let mut replies = current.replies.clone();
    remove_chunks(&mut replies, budget, |replies| {
        fails(&Hydration {
            replies: replies.to_vec(),
            ..current.clone()
        })
    });
    current.replies = replies;
    let mut attrs = current.event.attrs.clone();
    remove_chunks(&mut attrs, budget, |attrs| {
        let mut candidate = current.clone();
        candidate.event.attrs = attrs.to_vec();
        fails(&candidate)
    });
    current.event.attrs = attrs;
    for at in 0..current.replies.len() {
        let Ok(response) = &current.replies[at] else {
            continue;
        };
        let mut body = response.body.clone();
        remove_chunks(&mut body, budget, |body| {
            let mut candidate = current.clone();
            if let Ok(response) = &mut candidate.replies[at] {
                response.body = body.to_vec();
            }
            fails(&candidate)
        });
        if let Ok(response) = &mut current.replies[at] {
            response.body = body;
        }
    }
    current
}

/// Removes chunks of `items`, halving the chunk size down to one item, keeping every removal
/// after which `fails` still holds.
fn remove_chunks<T: Clone>(
    items: &mut Vec<T>,
    budget: &mut usize,
    mut fails: impl FnMut(&[T]) -> bool,
) {
    let mut chunk = items.len().div_ceil(2).max(1);
    loop {
        let mut start = 0;
        while start < items.len() && *budget > 0 {
            *budget -= 1;
            let end = (start + chunk).min(items.len());
            let mut candidate = Vec::with_capacity(items.len() - (end - start));
            candidate.extend_from_slice(&items[..start]);
            candidate.extend_from_slice(&items[end..]);
            if fails(&candidate) {
                *items = candidate;
            } else {
                start = end;
            }
        }
        if chunk == 1 || *budget == 0 {
            return;
        }
        chunk = chunk.div_ceil(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_everything_not_needed_to_fail() {
        let mut items: Vec<u8> = b"xxxxaxxxbxxxx".to_vec();
        let mut budget = 1_000;
        remove_chunks(&mut items, &mut budget, |items| {
            items.contains(&b'a') && items.contains(&b'b')
        });
        assert_eq!(items, b"ab");
    }
}
