//! HAProxy names derived from Nomad's: stable across restarts and always valid.

/// Characters HAProxy accepts in proxy and server names.
fn valid(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
}

fn clean(part: &str) -> String {
    part.chars()
        .map(|c| if valid(c) { c } else { '_' })
        .collect()
}

/// The backend of a service: `<namespace>_<service>`. Nomad names hold no
/// `_`, so the separator is unambiguous; anything else HAProxy would refuse
/// becomes `_`.
pub fn backend_name(namespace: &str, service: &str) -> String {
    format!("{}_{}", clean(namespace), clean(service))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_are_valid_and_unambiguous() {
        assert_eq!(backend_name("default", "web"), "default_web");
        assert_eq!(backend_name("a-b", "c"), "a-b_c");
        assert_eq!(backend_name("a", "b-c"), "a_b-c");
        assert_eq!(
            backend_name("default", "${NOMAD_JOB_NAME}-web"),
            "default___NOMAD_JOB_NAME_-web"
        );
    }
}
