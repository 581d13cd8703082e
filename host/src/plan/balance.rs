//! Load-balancing algorithms a connector-owned backend may use, and the ones refused.

use crate::vocab::syntax::Token;

/// Load-balancing algorithms that accept servers added at runtime.
///
/// HAProxy refuses `add server` on a backend with `static-rr` or a
/// map-based hash (`Backend must use a dynamic load balancing to support
/// dynamic servers.`), so those cannot be expressed: hashing algorithms are
/// always rendered with `hash-type consistent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Balance {
    /// `balance roundrobin` (HAProxy's default).
    #[default]
    RoundRobin,
    /// `balance leastconn`.
    LeastConn,
    /// `balance first`.
    First,
    /// `balance random`.
    Random,
    /// `balance source` with `hash-type consistent`.
    Source,
    /// `balance uri` with `hash-type consistent`.
    Uri,
}

/// A balance algorithm the connector will not write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BalanceError {
    /// HAProxy forbids servers added at runtime with this algorithm.
    #[error(
        "balance {0:?} forbids servers added at runtime (HAProxy: \"Backend must use a dynamic load balancing to support dynamic servers\"); use roundrobin, leastconn, first, random, source or uri"
    )]
    ForbidsDynamicServers(String),
    /// Not an algorithm the connector knows.
    #[error(
        "unknown balance algorithm {0:?}; use roundrobin, leastconn, first, random, source or uri"
    )]
    Unknown(String),
}

impl Balance {
    /// Parses an algorithm as written in a tag or the config.
    ///
    /// # Errors
    /// [`BalanceError::ForbidsDynamicServers`] for `static-rr`;
    /// [`BalanceError::Unknown`] for anything else, including the hashing
    /// algorithms the connector does not offer (`hdr()`, `url_param`, …).
    pub fn parse(text: &str) -> Result<Balance, BalanceError> {
        Ok(match text.trim() {
            "roundrobin" => Balance::RoundRobin,
            "leastconn" => Balance::LeastConn,
            "first" => Balance::First,
            "random" => Balance::Random,
            "source" => Balance::Source,
            "uri" => Balance::Uri,
            "static-rr" => return Err(BalanceError::ForbidsDynamicServers(text.into())),
            _ => return Err(BalanceError::Unknown(text.chars().take(40).collect())),
        })
    }

    pub(super) fn lines(self) -> Vec<Vec<Token>> {
        let algo = match self {
            Balance::RoundRobin => "roundrobin",
            Balance::LeastConn => "leastconn",
            Balance::First => "first",
            Balance::Random => "random",
            Balance::Source => "source",
            Balance::Uri => "uri",
        };
        let mut lines = vec![vec![Token::keyword("balance"), Token::keyword(algo)]];
        if matches!(self, Balance::Source | Balance::Uri) {
            lines.push(vec![
                Token::keyword("hash-type"),
                Token::keyword("consistent"),
            ]);
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::syntax::join;

    #[test]
    fn dynamic_algorithms_parse_and_hashes_are_consistent() {
        assert_eq!(Balance::parse("leastconn"), Ok(Balance::LeastConn));
        let lines: Vec<String> = Balance::parse("source")
            .unwrap()
            .lines()
            .iter()
            .map(|l| join(l))
            .collect();
        assert_eq!(lines, ["balance source", "hash-type consistent"]);
    }

    #[test]
    fn static_algorithms_are_refused_clearly() {
        let err = Balance::parse("static-rr").unwrap_err();
        assert!(matches!(err, BalanceError::ForbidsDynamicServers(_)));
        assert!(err.to_string().contains("forbids servers added at runtime"));
        assert!(matches!(
            Balance::parse("hdr(host)"),
            Err(BalanceError::Unknown(_))
        ));
    }
}
