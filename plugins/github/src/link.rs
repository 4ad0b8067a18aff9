//! The `Link` header GitHub paginates with (RFC 8288):
//! `<https://api.github.com/repositories/1/pulls/2/files?page=2>; rel="next", <…>; rel="last"`.
//!
//! The header comes from the network, so it is read leniently: targets are taken between `<`
//! and `>` (a URL may hold commas and semicolons), parameters may be quoted or not, in any case,
//! and `rel` may list several relations. Anything unreadable simply yields no next page.

/// The target of the first link whose `rel` includes `next`, if any.
pub fn next(header: &str) -> Option<&str> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after.find('>')?;
        let target = &after[..close];
        let params_and_more = &after[close + 1..];
        // A link's parameters run up to the next link's `<`.
        let params_end = params_and_more.find('<').unwrap_or(params_and_more.len());
        if is_next(&params_and_more[..params_end]) {
            return Some(target.trim());
        }
        rest = &params_and_more[params_end..];
    }
    None
}

/// Whether the `; name=value` parameters of one link have a `rel` that lists `next`.
fn is_next(params: &str) -> bool {
    params.split([';', ',']).any(|param| {
        let Some((name, value)) = param.split_once('=') else {
            return false;
        };
        name.trim().eq_ignore_ascii_case("rel")
            && value
                .trim()
                .trim_matches('"')
                .split_ascii_whitespace()
                .any(|relation| relation.eq_ignore_ascii_case("next"))
    })
}

#[cfg(test)]
mod tests {
    use super::next;

    #[test]
    fn finds_next_among_other_relations() {
        let header = "<https://api.github.test/repositories/1/pulls/2/files?page=1>; rel=\"prev\", \
                      <https://api.github.test/repositories/1/pulls/2/files?page=3>; rel=\"next\", \
                      <https://api.github.test/repositories/1/pulls/2/files?page=9>; rel=\"last\"";
        assert_eq!(
            next(header),
            Some("https://api.github.test/repositories/1/pulls/2/files?page=3")
        );
    }

    #[test]
    fn reads_unquoted_upper_case_and_listed_relations() {
        assert_eq!(
            next("<https://a.test/2>; REL=next"),
            Some("https://a.test/2")
        );
        assert_eq!(
            next("<https://a.test/2>; title=\"x\"; rel=\"last next\""),
            Some("https://a.test/2")
        );
    }

    #[test]
    fn keeps_commas_and_semicolons_inside_the_target() {
        assert_eq!(
            next("<https://a.test/x?q=a,b;c>; rel=\"next\""),
            Some("https://a.test/x?q=a,b;c")
        );
    }

    #[test]
    fn no_next_in_odd_or_partial_headers() {
        for header in [
            "",
            "garbage",
            "<https://a.test/2>; rel=\"last\"",
            "<https://a.test/2; rel=\"next\"",
            "https://a.test/2; rel=\"next\"",
            "<https://a.test/2>; rel=\"nextpage\"",
            "<https://a.test/2>; relation=\"next\"",
        ] {
            assert_eq!(next(header), None, "{header:?}");
        }
    }
}
