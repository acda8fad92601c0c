//! Kubeconfig files that point a client at the simulator with its bearer token.

/// The name used for the cluster, user and context.
pub const NAME: &str = "herald-sim";

/// A kubeconfig for `server` (e.g. `http://127.0.0.1:8080`) with a static bearer token
/// and `namespace` as the context's default namespace.
pub fn render(server: &str, token: &str, namespace: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {NAME}
  cluster:
    server: {server}
contexts:
- name: {NAME}
  context:
    cluster: {NAME}
    user: {NAME}
    namespace: {namespace}
current-context: {NAME}
preferences: {{}}
users:
- name: {NAME}
  user:
    token: {token}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_yaml() {
        let y = render("http://127.0.0.1:1", "t0k", "default");
        let v: serde_json::Value = serde_yaml_ng::from_str(&y).expect("yaml");
        assert_eq!(v["clusters"][0]["cluster"]["server"], "http://127.0.0.1:1");
        assert_eq!(v["users"][0]["user"]["token"], "t0k");
        assert_eq!(v["current-context"], NAME);
    }
}
