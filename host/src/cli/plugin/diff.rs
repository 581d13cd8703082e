//! A line diff in the unified style (`-` expected, `+` actual, ` ` both),
//! for the fixtures of `plugin test`: a check's lines are few, so the whole
//! of both sides is shown, without hunks.

/// The diff of `expected` against `actual`, or `None` when they are equal.
pub(super) fn unified(expected: &[String], actual: &[String]) -> Option<Vec<String>> {
    if expected == actual {
        return None;
    }
    // Longest common subsequence, table from the ends.
    let (n, m) = (expected.len(), actual.len());
    let mut common = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if expected[i] == actual[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let mut lines = vec!["--- expected".to_string(), "+++ actual".to_string()];
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            lines.push(format!(" {}", expected[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || common[i + 1][j] >= common[i][j + 1]) {
            lines.push(format!("-{}", expected[i]));
            i += 1;
        } else {
            lines.push(format!("+{}", actual[j]));
            j += 1;
        }
    }
    Some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    #[test]
    fn equal_sides_have_no_diff() {
        assert_eq!(unified(&lines("a\nb"), &lines("a\nb")), None);
    }

    #[test]
    fn a_changed_line_shows_as_minus_then_plus_between_common_lines() {
        let diff = unified(&lines("a\nb\nc"), &lines("a\nB\nc")).unwrap();
        assert_eq!(diff[2..], lines(" a\n-b\n+B\n c")[..]);
    }

    #[test]
    fn added_and_removed_lines_at_the_ends() {
        let diff = unified(&lines("a\nb"), &lines("b\nc")).unwrap();
        assert_eq!(diff[2..], lines("-a\n b\n+c")[..]);
    }
}
