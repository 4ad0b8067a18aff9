//! Where the next version of an installed plugin comes from (`mecha plugin upgrade`): the
//! source it was installed from, read again, except that an OCI reference whose tag is a version
//! (`1.2.0`, `v1.2`) moves to the highest released version tag in its repository.
//!
//! Versions compare by their numeric parts (`1.10.0` > `1.9.3`); tags with a pre-release part
//! (`1.3.0-rc.1`) or that are no version (`latest`, signature tags) are never picked, since an
//! upgrade should not move an operator onto a release candidate they did not name.

use std::cmp::Ordering;

use super::fetch::FetchOptions;
use super::oci;

/// The source to read the next version of a plugin installed from `source`.
pub async fn next_source(source: &str, options: &FetchOptions) -> Result<String, oci::Error> {
    if !source.starts_with("oci://") {
        return Ok(source.to_owned());
    }
    let reference = oci::Reference::parse(source)?;
    let oci::Target::Tag(tag) = &reference.target else {
        // Pinned to a digest: that is all it can ever name.
        return Ok(source.to_owned());
    };
    let Some(current) = release(tag) else {
        // `latest` and other moving tags: read the tag again.
        return Ok(source.to_owned());
    };
    let tags = oci::tags(source, &options.registry, options.insecure).await?;
    let newest = tags
        .iter()
        .filter_map(|candidate| Some((release(candidate)?, candidate)))
        .filter(|(version, _)| compare(version, &current) == Ordering::Greater)
        .max_by(|(a, _), (b, _)| compare(a, b));
    Ok(match newest {
        Some((_, tag)) => reference.with_tag(tag).to_string(),
        None => source.to_owned(),
    })
}

/// How the plugin version `new` compares with `old`, when both are versions.
pub fn compare_versions(new: &str, old: &str) -> Option<Ordering> {
    Some(compare(&release(new)?, &release(old)?))
}

/// The numeric parts of a release version (`v1.2.3` → [1, 2, 3]); none for anything else.
fn release(text: &str) -> Option<Vec<u64>> {
    let digits = text.strip_prefix('v').unwrap_or(text);
    if digits.is_empty() {
        return None;
    }
    digits
        .split('.')
        .map(|part| {
            if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
                None
            } else {
                part.parse().ok()
            }
        })
        .collect()
}

/// Compares numeric parts, a missing part counting as 0 (`1.2` == `1.2.0`).
fn compare(a: &[u64], b: &[u64]) -> Ordering {
    let len = a.len().max(b.len());
    (0..len)
        .map(|i| {
            a.get(i)
                .copied()
                .unwrap_or(0)
                .cmp(&b.get(i).copied().unwrap_or(0))
        })
        .find(|ordering| ordering.is_ne())
        .unwrap_or(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_their_numbers() {
        assert_eq!(compare_versions("1.10.0", "1.9.3"), Some(Ordering::Greater));
        assert_eq!(compare_versions("v1.2", "1.2.0"), Some(Ordering::Equal));
        assert_eq!(compare_versions("0.9.0", "1.0.0"), Some(Ordering::Less));
        for not_a_release in ["latest", "1.3.0-rc.1", "", "1..2", "sha256-ab.minisig"] {
            assert_eq!(
                compare_versions(not_a_release, "1.0.0"),
                None,
                "{not_a_release}"
            );
        }
    }
}
