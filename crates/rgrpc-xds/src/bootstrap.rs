//! The bootstrap: which xDS servers to ask, who this client is, and how a target's name becomes
//! a listener resource name (grpc/grpc `doc/grpc_xds_bootstrap_format.md`).
//!
//! Read from the file `GRPC_XDS_BOOTSTRAP` names, or inline from `GRPC_XDS_BOOTSTRAP_CONFIG`.
//! Every error names the field (`xds_servers[0].channel_creds: ...`), so that a bad bootstrap
//! fails the channel with a message that says what to fix. Unknown fields are ignored, as the
//! format asks, so bootstraps written for newer clients still load.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A parsed bootstrap.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    /// The servers to ask, in order of preference (we use the first).
    pub servers: Vec<ServerConfig>,
    /// The node sent in the first request of every stream.
    pub node: NodeConfig,
    /// `client_default_listener_resource_name_template` (default `%s`).
    pub client_default_listener_template: String,
    /// `authorities`, for `xds://authority/name` targets and `xdstp://` resource names.
    pub authorities: BTreeMap<String, AuthorityConfig>,
}

/// One xDS server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerConfig {
    /// `server_uri`: a target the rgrpc channel understands (`host:port`, `dns:///...`).
    pub uri: String,
    /// The first of `channel_creds` that this client supports.
    pub creds: ChannelCreds,
    /// `server_features` contains `ignore_resource_deletion` (gRFC A53).
    pub ignore_resource_deletion: bool,
}

/// How to reach an xDS server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelCreds {
    /// Plaintext.
    Insecure,
    /// TLS, with the root certificates of this file (the system's when absent) and, for mutual
    /// TLS, a certificate chain and key.
    Tls {
        /// `config.ca_certificate_file`.
        ca_certificate_file: Option<String>,
        /// `config.certificate_file`.
        certificate_file: Option<String>,
        /// `config.private_key_file`.
        private_key_file: Option<String>,
    },
}

/// What the client says about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeConfig {
    /// `node.id`.
    pub id: String,
    /// `node.cluster`.
    pub cluster: String,
    /// `node.locality`: region, zone, sub-zone.
    pub locality: Option<(String, String, String)>,
    /// `node.metadata`, any JSON object.
    pub metadata: Map<String, Value>,
}

/// One entry of `authorities`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorityConfig {
    /// `client_listener_resource_name_template` (default
    /// `xdstp://<authority>/envoy.config.listener.v3.Listener/%s`).
    pub client_listener_template: String,
    /// `xds_servers`; empty means the top-level ones.
    pub servers: Vec<ServerConfig>,
}

/// Where the bootstrap comes from, by the environment variables of every gRPC implementation.
pub fn from_env() -> Result<Bootstrap, String> {
    if let Some(path) = std::env::var_os("GRPC_XDS_BOOTSTRAP").filter(|p| !p.is_empty()) {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "GRPC_XDS_BOOTSTRAP: cannot read {}: {e}",
                std::path::Path::new(&path).display()
            )
        })?;
        return Bootstrap::parse(&text).map_err(|e| format!("GRPC_XDS_BOOTSTRAP: {e}"));
    }
    if let Ok(text) = std::env::var("GRPC_XDS_BOOTSTRAP_CONFIG")
        && !text.is_empty()
    {
        return Bootstrap::parse(&text).map_err(|e| format!("GRPC_XDS_BOOTSTRAP_CONFIG: {e}"));
    }
    Err(
        "no xDS bootstrap: set GRPC_XDS_BOOTSTRAP to a file or GRPC_XDS_BOOTSTRAP_CONFIG to \
         its JSON"
            .into(),
    )
}

fn string(o: &Map<String, Value>, name: &str, at: &str) -> Result<Option<String>, String> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{at}{name}: must be a string")),
    }
}

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{at}: must be a JSON object"))
}

fn servers(v: &Value, at: &str) -> Result<Vec<ServerConfig>, String> {
    let list = v
        .as_array()
        .ok_or_else(|| format!("{at}: must be a list of servers"))?;
    list.iter()
        .enumerate()
        .map(|(i, s)| ServerConfig::parse(s, &format!("{at}[{i}]")))
        .collect()
}

impl ServerConfig {
    fn parse(v: &Value, at: &str) -> Result<ServerConfig, String> {
        let o = object(v, at)?;
        let uri = string(o, "server_uri", &format!("{at}."))?
            .filter(|u| !u.is_empty())
            .ok_or_else(|| format!("{at}.server_uri: missing"))?;
        let creds = o
            .get("channel_creds")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{at}.channel_creds: missing (a list of credentials)"))?;
        let mut chosen = None;
        let mut seen = Vec::new();
        for (i, c) in creds.iter().enumerate() {
            let at = format!("{at}.channel_creds[{i}]");
            let c = object(c, &at)?;
            let kind = string(c, "type", &format!("{at}."))?
                .ok_or_else(|| format!("{at}.type: missing"))?;
            let config = match c.get("config") {
                None | Some(Value::Null) => Map::new(),
                Some(v) => object(v, &format!("{at}.config"))?.clone(),
            };
            let at = format!("{at}.config.");
            let found = match kind.as_str() {
                "insecure" => Some(ChannelCreds::Insecure),
                "tls" if cfg!(feature = "tls") => Some(ChannelCreds::Tls {
                    ca_certificate_file: string(&config, "ca_certificate_file", &at)?,
                    certificate_file: string(&config, "certificate_file", &at)?,
                    private_key_file: string(&config, "private_key_file", &at)?,
                }),
                _ => None,
            };
            seen.push(kind);
            if let Some(found) = found {
                chosen = Some(found);
                break;
            }
        }
        let creds = chosen.ok_or_else(|| {
            let tls = if cfg!(feature = "tls") {
                ", tls"
            } else {
                "; tls needs rgrpc-xds's `tls` feature"
            };
            format!(
                "{at}.channel_creds: no supported type among {seen:?} (supported: insecure{tls})"
            )
        })?;
        let features = match o.get("server_features") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            Some(_) => return Err(format!("{at}.server_features: must be a list of strings")),
        };
        Ok(ServerConfig {
            uri,
            creds,
            ignore_resource_deletion: features.contains(&"ignore_resource_deletion"),
        })
    }
}

impl Bootstrap {
    /// Parses a bootstrap's JSON.
    pub fn parse(text: &str) -> Result<Bootstrap, String> {
        let root: Value =
            serde_json::from_str(text).map_err(|e| format!("the bootstrap is not JSON: {e}"))?;
        let root = object(&root, "the bootstrap")?;
        let top = match root.get("xds_servers") {
            Some(v) => servers(v, "xds_servers")?,
            None => Vec::new(),
        };
        if top.is_empty() {
            return Err("xds_servers: at least one server is needed".into());
        }
        let node = match root.get("node") {
            None | Some(Value::Null) => NodeConfig::default(),
            Some(v) => {
                let o = object(v, "node")?;
                let locality = match o.get("locality") {
                    None | Some(Value::Null) => None,
                    Some(l) => {
                        let l = object(l, "node.locality")?;
                        let part = |name: &str| {
                            string(l, name, "node.locality.").map(Option::unwrap_or_default)
                        };
                        Some((part("region")?, part("zone")?, part("sub_zone")?))
                    }
                };
                let metadata = match o.get("metadata") {
                    None | Some(Value::Null) => Map::new(),
                    Some(m) => object(m, "node.metadata")?.clone(),
                };
                NodeConfig {
                    id: string(o, "id", "node.")?.unwrap_or_default(),
                    cluster: string(o, "cluster", "node.")?.unwrap_or_default(),
                    locality,
                    metadata,
                }
            }
        };
        let client_default_listener_template =
            string(root, "client_default_listener_resource_name_template", "")?
                .unwrap_or_else(|| "%s".into());
        let mut authorities = BTreeMap::new();
        if let Some(v) = root.get("authorities").filter(|v| !v.is_null()) {
            for (name, a) in object(v, "authorities")? {
                let at = format!("authorities[{name:?}]");
                let o = object(a, &at)?;
                let template = string(
                    o,
                    "client_listener_resource_name_template",
                    &format!("{at}."),
                )?
                .unwrap_or_else(|| format!("xdstp://{name}/envoy.config.listener.v3.Listener/%s"));
                if !template.starts_with(&format!("xdstp://{name}/")) {
                    return Err(format!(
                        "{at}.client_listener_resource_name_template: must start with \
                         \"xdstp://{name}/\""
                    ));
                }
                let servers = match o.get("xds_servers") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(v) => servers(v, &format!("{at}.xds_servers"))?,
                };
                authorities.insert(
                    name.clone(),
                    AuthorityConfig {
                        client_listener_template: template,
                        servers,
                    },
                );
            }
        }
        Ok(Bootstrap {
            servers: top,
            node,
            client_default_listener_template,
            authorities,
        })
    }

    /// The listener resource name for a target: its authority (empty for `xds:///name`) and
    /// its name (gRFC A47's templates; `%s` is replaced, percent-encoded in `xdstp:` names).
    pub fn listener_name(&self, authority: &str, name: &str) -> Result<String, String> {
        let template = if authority.is_empty() {
            &self.client_default_listener_template
        } else {
            &self
                .authorities
                .get(authority)
                .ok_or_else(|| {
                    format!(
                        "the target's authority {authority:?} is not in the bootstrap's authorities"
                    )
                })?
                .client_listener_template
        };
        let name = if template.starts_with("xdstp:") {
            percent_encode_path(name)
        } else {
            name.to_owned()
        };
        Ok(template.replace("%s", &name))
    }

    /// The servers that serve a resource: its `xdstp://` authority's, else the top-level ones.
    pub fn servers_for(&self, resource: &str) -> Result<&[ServerConfig], String> {
        let Some(rest) = resource.strip_prefix("xdstp://") else {
            return Ok(&self.servers);
        };
        let authority = rest.split('/').next().unwrap_or("");
        let a = self.authorities.get(authority).ok_or_else(|| {
            format!("resource {resource:?}: its authority {authority:?} is not in the bootstrap")
        })?;
        Ok(if a.servers.is_empty() {
            &self.servers
        } else {
            &a.servers
        })
    }
}

/// Percent-encodes what a URI path may not hold (keeping `/`), as A47 asks of names put into
/// `xdstp:` templates.
fn percent_encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'/'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
            );
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
        "xds_servers": [{
            "server_uri": "localhost:18000",
            "channel_creds": [{"type": "google_default"}, {"type": "insecure"}],
            "server_features": ["xds_v3", "ignore_resource_deletion"]
        }],
        "node": {
            "id": "client-1", "cluster": "c",
            "locality": {"zone": "z1"},
            "metadata": {"k": 1}
        },
        "authorities": {"a.example": {}},
        "something_newer": true
    }"#;

    #[test]
    fn a_good_bootstrap() {
        let b = Bootstrap::parse(GOOD).unwrap();
        assert_eq!(b.servers.len(), 1);
        assert_eq!(b.servers[0].uri, "localhost:18000");
        assert_eq!(b.servers[0].creds, ChannelCreds::Insecure);
        assert!(b.servers[0].ignore_resource_deletion);
        assert_eq!(b.node.id, "client-1");
        assert_eq!(
            b.node.locality,
            Some((String::new(), "z1".into(), String::new()))
        );
        assert_eq!(b.listener_name("", "svc").unwrap(), "svc");
        assert_eq!(
            b.listener_name("a.example", "my svc").unwrap(),
            "xdstp://a.example/envoy.config.listener.v3.Listener/my%20svc"
        );
        assert!(b.listener_name("b.example", "x").is_err());
        assert_eq!(
            b.servers_for("xdstp://a.example/envoy.config.cluster.v3.Cluster/c")
                .unwrap()[0]
                .uri,
            "localhost:18000"
        );
    }

    #[test]
    fn bad_bootstraps_name_the_field() {
        let cases = [
            ("[]", "must be a JSON object"),
            ("{}", "xds_servers"),
            (r#"{"xds_servers": [{}]}"#, "xds_servers[0].server_uri"),
            (
                r#"{"xds_servers": [{"server_uri": "x"}]}"#,
                "xds_servers[0].channel_creds",
            ),
            (
                r#"{"xds_servers": [{"server_uri": "x", "channel_creds": [{"type": "google_default"}]}]}"#,
                "no supported type",
            ),
            (
                r#"{"xds_servers": [{"server_uri": "x", "channel_creds": [{"type": "insecure"}]}], "node": {"id": 3}}"#,
                "node.id",
            ),
            (
                r#"{"xds_servers": [{"server_uri": "x", "channel_creds": [{"type": "insecure"}]}], "authorities": {"a": {"client_listener_resource_name_template": "xdstp://b/x/%s"}}}"#,
                "authorities[\"a\"].client_listener_resource_name_template",
            ),
            ("{", "not JSON"),
        ];
        for (text, want) in cases {
            let err = Bootstrap::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
