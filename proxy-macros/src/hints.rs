//! "Did you mean" hints for misspelled names. Used by `ast` (keywords, matchers) and by
//! `check` (clusters, predicates, options); depends on nothing else in the crate.

/// `; did you mean `x`?` when a known name is close to `name`, else nothing: within a few
/// edits (a swap of neighbours counts as one), or sharing its first four letters.
pub fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    let head: String = name.chars().take(4).collect();
    let long_enough = name.chars().count() >= 4;
    let best = known
        .into_iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, k)| {
            *d <= (k.len().max(name.len()) / 3).max(1)
                || (long_enough && k.starts_with(&head) && k.len().abs_diff(name.len()) <= 3)
        })
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, k)) => format!("; did you mean `{k}`?"),
        None => String::new(),
    }
}

/// A "did you mean" hint when one fits, else the list of what is expected:
/// ``; expected one of: `tcp`, `http` ``.
pub fn hint_or_list(name: &str, known: &[&str]) -> String {
    match did_you_mean(name, known.iter().copied()).as_str() {
        "" => format!(
            "; expected one of: {}",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        h => h.to_owned(),
    }
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// neighbouring characters each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        // (typed, known, suggestion)
        let cases = [
            ("wbe", "web", true),
            ("hots", "host", true),
            ("retry", "retries", true),
            ("apii", "api", true),
            ("zzz", "web", false),
            ("cache", "backends", false),
        ];
        for (typed, known, suggested) in cases {
            assert_eq!(
                !did_you_mean(typed, [known]).is_empty(),
                suggested,
                "{typed} vs {known}"
            );
        }
    }

    #[test]
    fn non_ascii_names_do_not_panic() {
        // Identifiers may be Unicode; the first four letters are characters, not bytes.
        assert_eq!(did_you_mean("abcñ", ["abcñd"]), "; did you mean `abcñd`?");
        assert_eq!(did_you_mean("ñññññ", ["web"]), "");
        assert_eq!(edit_distance("ñb", "bñ"), 1);
    }
}
