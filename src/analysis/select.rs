//! Choosing tensors by name: an exact name or a glob (`layers.*.mlp.*`, `?.weight`), with the
//! names closest to one that matches nothing.
//!
//! The glob is the window's table filter (`*` any run, `?` one character, case-insensitive), so
//! `ckptscope stats --tensor` selects what typing the same text in the window shows. An exact
//! name always wins over reading it as a glob: a tensor may be called `a*b`.
//!
//! Owns: name matching and suggestions. Must not import: `moments`, `codes`,
//! `summary` (the statistics; they import it).

use crate::format::Checkpoint;

/// Why a pattern selects nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// No tensor has this name, or none matches this glob.
    #[error("{}", no_match_message(.pattern, .close, .tensors))]
    NoMatch {
        /// The name or glob given.
        pattern: String,
        /// The closest names, best first (at most [`CLOSE_NAMES`]).
        close: Vec<String>,
        /// Tensors the checkpoint has.
        tensors: usize,
    },
}

fn no_match_message(pattern: &str, close: &[String], tensors: &usize) -> String {
    let what = if is_glob(pattern) {
        format!("no tensor matches `{pattern}`")
    } else {
        format!("no tensor named `{pattern}`")
    };
    if close.is_empty() {
        format!("{what} (the checkpoint has {tensors} tensors)")
    } else {
        let names: Vec<String> = close.iter().map(|n| format!("`{n}`")).collect();
        format!("{what}; close names: {}", names.join(", "))
    }
}

/// Suggestions given for a pattern that matches nothing.
pub const CLOSE_NAMES: usize = 5;

/// True when `pattern` has glob characters (`*`, `?`).
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// Glob matching with `*` and `?`, case-insensitive.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while let Some(&tc) = t.get(ti) {
        match p.get(pi) {
            Some(&pc) if pc == '?' || pc == tc => {
                pi += 1;
                ti += 1;
            }
            Some('*') => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            _ => {
                let Some(s) = star else { return false };
                pi = s + 1;
                mark += 1;
                ti = mark;
            }
        }
    }
    while p.get(pi) == Some(&'*') {
        pi += 1;
    }
    pi == p.len()
}

/// Indices into `ckpt.tensors` of the tensors `patterns` select, in file order, each once;
/// every tensor when `patterns` is empty. A pattern that selects nothing is an error naming the
/// closest names.
pub fn select(ckpt: &Checkpoint, patterns: &[String]) -> Result<Vec<usize>, SelectError> {
    if patterns.is_empty() {
        return Ok((0..ckpt.tensors.len()).collect());
    }
    let mut chosen = vec![false; ckpt.tensors.len()];
    for pattern in patterns {
        let exact = ckpt.tensors.iter().position(|t| t.name == *pattern);
        let mut any = false;
        for (i, t) in ckpt.tensors.iter().enumerate() {
            let hit = match exact {
                Some(e) => i == e,
                None => is_glob(pattern) && glob_match(pattern, &t.name),
            };
            if hit && let Some(c) = chosen.get_mut(i) {
                *c = true;
                any = true;
            }
        }
        if !any {
            return Err(SelectError::NoMatch {
                pattern: pattern.clone(),
                close: close_names(pattern, ckpt.tensors.iter().map(|t| t.name.as_str())),
                tensors: ckpt.tensors.len(),
            });
        }
    }
    Ok(chosen
        .iter()
        .enumerate()
        .filter_map(|(i, &c)| c.then_some(i))
        .collect())
}

/// The names closest to `wanted`, best first, at most [`CLOSE_NAMES`]: those that contain it or
/// that it contains (case-insensitively), then those within a few edits of it (a third of its
/// length, at least 2). For a glob, its literal parts are what is compared.
pub fn close_names<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let key: String = wanted
        .to_lowercase()
        .chars()
        .filter(|c| !matches!(c, '*' | '?'))
        .collect();
    if key.is_empty() {
        return Vec::new();
    }
    let budget = (key.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = names
        .filter_map(|name| {
            let lower = name.to_lowercase();
            if lower.contains(&key) || key.contains(&lower) {
                return Some((0, name));
            }
            edit_distance(&key, &lower, budget).map(|d| (d, name))
        })
        .collect();
    scored.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.len().cmp(&b.1.len()))
            .then(a.1.cmp(b.1))
    });
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(CLOSE_NAMES)
        .map(|(_, n)| n.to_string())
        .collect()
}

/// Levenshtein distance of `a` and `b` when it is at most `budget`, else `None` (rows stop early
/// once every entry exceeds it, so a long name far from `a` costs little).
fn edit_distance(a: &str, b: &str, budget: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > budget {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        let mut best = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(usize::MAX) + usize::from(ca != cb);
            let del = prev.get(j + 1).copied().unwrap_or(usize::MAX) + 1;
            let ins = row.get(j).copied().unwrap_or(usize::MAX) + 1;
            let d = sub.min(del).min(ins);
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = d;
            }
            best = best.min(d);
        }
        if best > budget {
            return None;
        }
        std::mem::swap(&mut prev, &mut row);
    }
    prev.last().copied().filter(|&d| d <= budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(
            "model.layers.*.mlp.*",
            "model.layers.3.mlp.up_proj.weight"
        ));
        assert!(!glob_match("*.bias", "model.weight"));
        assert!(glob_match("?.weight", "0.weight"));
        assert!(glob_match("*", ""));
        assert!(glob_match("A*", "abc"));
        assert!(!glob_match("a?", "a"));
    }

    #[test]
    fn close_names_rank_containment_then_edits() {
        let names = ["0.weight", "0.bias", "2.weight", "3.weight", "embed.weight"];
        // A swap is two edits, the budget of an 8-character name: `2.weight` is three away.
        assert_eq!(close_names("0.weigth", names.iter().copied()), ["0.weight"]);
        // Ties go shortest first, then by name.
        assert_eq!(
            close_names("1.weight", names.iter().copied()),
            ["0.weight", "2.weight", "3.weight"]
        );
        assert_eq!(
            close_names("embed", names.iter().copied()),
            ["embed.weight"]
        );
        assert!(close_names("zzzzzzzzzz", names.iter().copied()).is_empty());
        assert_eq!(edit_distance("kitten", "sitting", 3), Some(3));
        assert_eq!(edit_distance("kitten", "sitting", 2), None);
    }
}
