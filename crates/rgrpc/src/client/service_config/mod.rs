//! Service config (gRFC A2, with the retry and hedging policies of A6 and the fallback rules of
//! A21), in the JSON form of `grpc/service_config/service_config.proto`: the load-balancing
//! policy, per-method settings, retry throttling and the health-check service.
//!
//! Parsing and lookup only. Every error names the field (`methodConfig[1].retryPolicy.maxAttempts:
//! ...`); the channel keeps the last valid config when a new one is refused. Unknown fields are
//! ignored, as in every gRPC implementation, so configs written for newer features still load.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::client::balancer;
use crate::status::Code;

/// The cap A6 puts on `maxAttempts` of either policy.
pub(crate) const MAX_ATTEMPTS_CAP: u32 = 5;

/// A parsed, validated service config.
#[derive(Clone, Default)]
pub struct ServiceConfig {
    lb: Option<(String, Value)>,
    methods: Vec<Arc<MethodConfig>>,
    by_method: HashMap<String, usize>,
    by_service: HashMap<String, usize>,
    default: Option<usize>,
    throttling: Option<Throttling>,
    health_check_service: Option<String>,
}

/// The settings of the methods a `methodConfig` entry names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MethodConfig {
    /// Deadline for calls that set a longer one or none.
    pub timeout: Option<Duration>,
    /// Whether calls wait for a connection instead of failing fast.
    pub wait_for_ready: Option<bool>,
    /// Largest request message the client sends.
    pub max_request_message_bytes: Option<usize>,
    /// Largest response message the client accepts.
    pub max_response_message_bytes: Option<usize>,
    /// Retry or hedging, at most one of them.
    pub policy: Option<CallPolicy>,
}

/// How failed calls are tried again.
#[derive(Debug, Clone, PartialEq)]
pub enum CallPolicy {
    /// Try again after a failure with a retryable code.
    Retry(RetryPolicy),
    /// Send several attempts, spaced by a delay, and keep the first to answer.
    Hedging(HedgingPolicy),
}

/// A6's `retryPolicy`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (2 to 5).
    pub max_attempts: u32,
    /// The backoff before the first retry is random in [0, initial_backoff].
    pub initial_backoff: Duration,
    /// The largest backoff.
    pub max_backoff: Duration,
    /// Growth of the backoff between retries.
    pub backoff_multiplier: f64,
    /// The codes worth retrying.
    pub retryable_codes: CodeSet,
}

/// A6's `hedgingPolicy`.
#[derive(Debug, Clone, PartialEq)]
pub struct HedgingPolicy {
    /// Attempts in all, the first included (2 to 5).
    pub max_attempts: u32,
    /// Time between sending two attempts.
    pub hedging_delay: Duration,
    /// Codes after which the remaining attempts still go ahead; any other code ends the call.
    pub non_fatal_codes: CodeSet,
}

/// A set of status codes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CodeSet(u32);

impl CodeSet {
    /// Whether `code` is in the set.
    pub fn contains(self, code: Code) -> bool {
        self.0 & (1 << code as u32) != 0
    }

    pub(crate) fn insert(&mut self, code: Code) {
        self.0 |= 1 << code as u32;
    }
}

impl FromIterator<Code> for CodeSet {
    fn from_iter<I: IntoIterator<Item = Code>>(codes: I) -> CodeSet {
        let mut set = CodeSet::default();
        for code in codes {
            set.insert(code);
        }
        set
    }
}

/// A6's `retryThrottling`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttling {
    /// Size of the token bucket (at most 1000).
    pub max_tokens: f64,
    /// Tokens a successful call gives back.
    pub token_ratio: f64,
}

impl ServiceConfig {
    /// Parses and validates a service config with the built-in balancers.
    pub fn from_json(json: &str) -> Result<ServiceConfig, String> {
        ServiceConfig::parse(json, &balancer::Registry::default())
    }

    pub(crate) fn parse(
        json: &str,
        balancers: &balancer::Registry,
    ) -> Result<ServiceConfig, String> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| format!("service config is not JSON: {e}"))?;
        let Value::Object(root) = value else {
            return Err("service config must be a JSON object".into());
        };
        let mut config = ServiceConfig {
            lb: load_balancing(&root, balancers)?,
            ..ServiceConfig::default()
        };
        if let Some(list) = root.get("methodConfig") {
            let list = list.as_array().ok_or("methodConfig: must be a list")?;
            for (i, entry) in list.iter().enumerate() {
                let at = format!("methodConfig[{i}]");
                let entry = entry
                    .as_object()
                    .ok_or_else(|| format!("{at}: must be an object"))?;
                let method = Arc::new(method_config(entry, &at)?);
                let index = config.methods.len();
                config.methods.push(method);
                let names = match entry.get("name") {
                    None => return Err(format!("{at}.name: missing")),
                    Some(Value::Array(names)) => names,
                    Some(_) => return Err(format!("{at}.name: must be a list")),
                };
                for (j, name) in names.iter().enumerate() {
                    let at = format!("{at}.name[{j}]");
                    let name = name
                        .as_object()
                        .ok_or_else(|| format!("{at}: must be an object"))?;
                    let service = optional_str(name, "service", &at)?.unwrap_or("");
                    let method = optional_str(name, "method", &at)?.unwrap_or("");
                    let slot = if service.is_empty() {
                        if !method.is_empty() {
                            return Err(format!("{at}: a method needs its service"));
                        }
                        if config.default.replace(index).is_some() {
                            return Err(format!("{at}: a second default (empty) name"));
                        }
                        continue;
                    } else if method.is_empty() {
                        config.by_service.insert(service.to_owned(), index)
                    } else {
                        config
                            .by_method
                            .insert(format!("{service}/{method}"), index)
                    };
                    if slot.is_some() {
                        return Err(format!("{at}: names a method that another entry names too"));
                    }
                }
            }
        }
        if let Some(t) = root.get("retryThrottling") {
            let t = t.as_object().ok_or("retryThrottling: must be an object")?;
            let max_tokens = number(t, "maxTokens", "retryThrottling")?
                .ok_or("retryThrottling.maxTokens: missing")?;
            if !(max_tokens > 0.0 && max_tokens <= 1000.0) {
                return Err("retryThrottling.maxTokens: must be above 0 and at most 1000".into());
            }
            let token_ratio = number(t, "tokenRatio", "retryThrottling")?
                .ok_or("retryThrottling.tokenRatio: missing")?;
            if token_ratio <= 0.0 {
                return Err("retryThrottling.tokenRatio: must be above 0".into());
            }
            config.throttling = Some(Throttling {
                max_tokens,
                // A6 keeps three decimal places.
                token_ratio: (token_ratio * 1000.0).trunc() / 1000.0,
            });
        }
        if let Some(h) = root.get("healthCheckConfig") {
            let h = h
                .as_object()
                .ok_or("healthCheckConfig: must be an object")?;
            config.health_check_service =
                optional_str(h, "serviceName", "healthCheckConfig")?.map(str::to_owned);
        }
        Ok(config)
    }

    /// The settings of `path` (`/package.Service/Method`): the entry naming the method, else the
    /// one naming its service, else the default entry.
    pub fn method(&self, path: &str) -> Option<&Arc<MethodConfig>> {
        if self.methods.is_empty() {
            return None;
        }
        let full = path.strip_prefix('/').unwrap_or(path);
        let service = full.split_once('/').map(|(s, _)| s).unwrap_or(full);
        self.by_method
            .get(full)
            .or_else(|| self.by_service.get(service))
            .or(self.default.as_ref())
            .map(|&i| &self.methods[i])
    }

    /// The load-balancing policy chosen (the first supported in `loadBalancingConfig`) and its
    /// config.
    pub fn load_balancing(&self) -> Option<(&str, &Value)> {
        self.lb.as_ref().map(|(n, v)| (n.as_str(), v))
    }

    /// Retry throttling, if configured.
    pub fn retry_throttling(&self) -> Option<Throttling> {
        self.throttling
    }

    /// The service whose health the client checks (gRFC A17), if any.
    pub fn health_check_service(&self) -> Option<&str> {
        self.health_check_service.as_deref()
    }
}

impl fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("load_balancing", &self.lb.as_ref().map(|l| &l.0))
            .field("methods", &self.methods.len())
            .field("retry_throttling", &self.throttling)
            .field("health_check_service", &self.health_check_service)
            .finish()
    }
}

fn load_balancing(
    root: &Map<String, Value>,
    balancers: &balancer::Registry,
) -> Result<Option<(String, Value)>, String> {
    if let Some(list) = root.get("loadBalancingConfig") {
        let list = list
            .as_array()
            .ok_or("loadBalancingConfig: must be a list")?;
        let mut names = Vec::new();
        for (i, entry) in list.iter().enumerate() {
            let at = format!("loadBalancingConfig[{i}]");
            let entry = entry
                .as_object()
                .ok_or_else(|| format!("{at}: must be an object"))?;
            if entry.len() != 1 {
                return Err(format!("{at}: must have exactly one policy name"));
            }
            let (name, config) = entry.iter().next().expect("one entry");
            if let Some(builder) = balancers.get(name) {
                if !config.is_object() {
                    return Err(format!("{at}.{name}: must be an object"));
                }
                builder
                    .check_config(config)
                    .map_err(|why| format!("{at}: {why}"))?;
                return Ok(Some((name.clone(), config.clone())));
            }
            names.push(name.as_str());
        }
        if !list.is_empty() {
            return Err(format!(
                "loadBalancingConfig: no supported policy among {names:?}"
            ));
        }
    }
    match root.get("loadBalancingPolicy") {
        None => Ok(None),
        Some(Value::String(name)) => {
            let name = name.to_ascii_lowercase();
            if balancers.get(&name).is_some() {
                Ok(Some((name, Value::Object(Map::new()))))
            } else {
                Err(format!("loadBalancingPolicy: unknown policy {name:?}"))
            }
        }
        Some(_) => Err("loadBalancingPolicy: must be a string".into()),
    }
}

fn method_config(entry: &Map<String, Value>, at: &str) -> Result<MethodConfig, String> {
    let mut m = MethodConfig {
        timeout: optional_duration(entry, "timeout", at)?,
        ..MethodConfig::default()
    };
    if let Some(v) = entry.get("waitForReady") {
        m.wait_for_ready = Some(
            v.as_bool()
                .ok_or_else(|| format!("{at}.waitForReady: must be true or false"))?,
        );
    }
    m.max_request_message_bytes = byte_count(entry, "maxRequestMessageBytes", at)?;
    m.max_response_message_bytes = byte_count(entry, "maxResponseMessageBytes", at)?;
    let retry = entry.get("retryPolicy");
    let hedging = entry.get("hedgingPolicy");
    m.policy = match (retry, hedging) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{at}: retryPolicy and hedgingPolicy cannot both be set"
            ));
        }
        (Some(r), None) => Some(CallPolicy::Retry(retry_policy(
            r,
            &format!("{at}.retryPolicy"),
        )?)),
        (None, Some(h)) => Some(CallPolicy::Hedging(hedging_policy(
            h,
            &format!("{at}.hedgingPolicy"),
        )?)),
        (None, None) => None,
    };
    Ok(m)
}

fn max_attempts(o: &Map<String, Value>, at: &str) -> Result<u32, String> {
    let n = number(o, "maxAttempts", at)?.ok_or_else(|| format!("{at}.maxAttempts: missing"))?;
    if n.fract() != 0.0 || n < 2.0 {
        return Err(format!(
            "{at}.maxAttempts: must be a whole number, 2 or more"
        ));
    }
    Ok((n.min(MAX_ATTEMPTS_CAP as f64)) as u32)
}

fn retry_policy(v: &Value, at: &str) -> Result<RetryPolicy, String> {
    let o = v
        .as_object()
        .ok_or_else(|| format!("{at}: must be an object"))?;
    let max_attempts = max_attempts(o, at)?;
    let positive = |name: &str| -> Result<Duration, String> {
        let d = optional_duration(o, name, at)?.ok_or_else(|| format!("{at}.{name}: missing"))?;
        if d.is_zero() {
            return Err(format!("{at}.{name}: must be above zero"));
        }
        Ok(d)
    };
    let initial_backoff = positive("initialBackoff")?;
    let max_backoff = positive("maxBackoff")?;
    let backoff_multiplier = number(o, "backoffMultiplier", at)?
        .ok_or_else(|| format!("{at}.backoffMultiplier: missing"))?;
    if backoff_multiplier <= 0.0 {
        return Err(format!("{at}.backoffMultiplier: must be above zero"));
    }
    let retryable_codes = codes(o, "retryableStatusCodes", at)?
        .ok_or_else(|| format!("{at}.retryableStatusCodes: missing"))?;
    if retryable_codes == CodeSet::default() {
        return Err(format!("{at}.retryableStatusCodes: must not be empty"));
    }
    Ok(RetryPolicy {
        max_attempts,
        initial_backoff,
        max_backoff,
        backoff_multiplier,
        retryable_codes,
    })
}

fn hedging_policy(v: &Value, at: &str) -> Result<HedgingPolicy, String> {
    let o = v
        .as_object()
        .ok_or_else(|| format!("{at}: must be an object"))?;
    Ok(HedgingPolicy {
        max_attempts: max_attempts(o, at)?,
        hedging_delay: optional_duration(o, "hedgingDelay", at)?.unwrap_or_default(),
        non_fatal_codes: codes(o, "nonFatalStatusCodes", at)?.unwrap_or_default(),
    })
}

fn codes(o: &Map<String, Value>, name: &str, at: &str) -> Result<Option<CodeSet>, String> {
    let Some(v) = o.get(name) else {
        return Ok(None);
    };
    let list = v
        .as_array()
        .ok_or_else(|| format!("{at}.{name}: must be a list"))?;
    let mut set = CodeSet::default();
    for item in list {
        let code = match item {
            Value::String(s) => Code::from_name(&s.to_ascii_uppercase()),
            Value::Number(n) => n
                .as_u64()
                .filter(|n| *n <= 16)
                .map(|n| Code::from_i32(n as i32)),
            _ => None,
        }
        .ok_or_else(|| format!("{at}.{name}: {item} is not a status code"))?;
        if code == Code::Ok {
            return Err(format!("{at}.{name}: OK cannot be listed"));
        }
        set.insert(code);
    }
    Ok(Some(set))
}

fn optional_str<'a>(
    o: &'a Map<String, Value>,
    name: &str,
    at: &str,
) -> Result<Option<&'a str>, String> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{at}.{name}: must be a string")),
    }
}

fn number(o: &Map<String, Value>, name: &str, at: &str) -> Result<Option<f64>, String> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) => s
            .parse::<f64>()
            .map(Some)
            .map_err(|_| format!("{at}.{name}: {s:?} is not a number")),
        Some(_) => Err(format!("{at}.{name}: must be a number")),
    }
}

fn byte_count(o: &Map<String, Value>, name: &str, at: &str) -> Result<Option<usize>, String> {
    match number(o, name, at)? {
        None => Ok(None),
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Ok(Some(n as usize)),
        Some(_) => Err(format!("{at}.{name}: must be a whole number of bytes")),
    }
}

fn optional_duration(
    o: &Map<String, Value>,
    name: &str,
    at: &str,
) -> Result<Option<Duration>, String> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_duration(s)
            .map(Some)
            .ok_or_else(|| format!("{at}.{name}: {s:?} is not a duration like \"1.5s\"")),
        Some(_) => Err(format!(
            "{at}.{name}: must be a duration string like \"1.5s\""
        )),
    }
}

/// A protobuf JSON duration: decimal seconds with an `s` suffix (`"1s"`, `"0.25s"`, `".01s"`).
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let digits = s.strip_suffix('s')?;
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (whole.is_empty() && frac.is_empty())
        || frac.len() > 9
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    if secs > 315_576_000_000 {
        return None;
    }
    Some(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        ServiceConfig::from_json(json).unwrap_err()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("0.25s"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration(".01s"), Some(Duration::from_millis(10)));
        assert_eq!(parse_duration("1.000000001s"), Some(Duration::new(1, 1)));
        for bad in ["1", "s", "-1s", "1.5ms", "1.0000000001s", "1e3s", ""] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn name_matching_prefers_method_then_service_then_default() {
        let c = ServiceConfig::from_json(
            r#"{"methodConfig":[
                {"name":[{}],"timeout":"1s"},
                {"name":[{"service":"p.S"}],"timeout":"2s"},
                {"name":[{"service":"p.S","method":"M"}],"timeout":"3s","waitForReady":true}
            ]}"#,
        )
        .unwrap();
        let t = |p: &str| c.method(p).unwrap().timeout.unwrap().as_secs();
        assert_eq!(t("/p.S/M"), 3);
        assert_eq!(t("/p.S/Other"), 2);
        assert_eq!(t("/q.T/M"), 1);
        assert_eq!(c.method("/p.S/M").unwrap().wait_for_ready, Some(true));
        let none =
            ServiceConfig::from_json(r#"{"methodConfig":[{"name":[{"service":"p.S"}]}]}"#).unwrap();
        assert!(none.method("/q.T/M").is_none());
    }

    #[test]
    fn a_full_retry_config() {
        let c = ServiceConfig::from_json(
            r#"{
              "loadBalancingConfig":[{"unknown_policy":{}},{"round_robin":{}}],
              "methodConfig":[{"name":[{"service":"p.S"}],
                "maxRequestMessageBytes":1024,"maxResponseMessageBytes":"2048",
                "retryPolicy":{"maxAttempts":9,"initialBackoff":"0.1s","maxBackoff":"1s",
                  "backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE","resource_exhausted",10]}}],
              "retryThrottling":{"maxTokens":10,"tokenRatio":0.12345},
              "healthCheckConfig":{"serviceName":"p.S"}
            }"#,
        )
        .unwrap();
        assert_eq!(c.load_balancing().unwrap().0, "round_robin");
        let m = c.method("/p.S/X").unwrap();
        assert_eq!(m.max_request_message_bytes, Some(1024));
        assert_eq!(m.max_response_message_bytes, Some(2048));
        let Some(CallPolicy::Retry(r)) = &m.policy else {
            panic!()
        };
        assert_eq!(r.max_attempts, 5, "capped");
        assert!(r.retryable_codes.contains(Code::Unavailable));
        assert!(r.retryable_codes.contains(Code::ResourceExhausted));
        assert!(r.retryable_codes.contains(Code::Aborted));
        assert!(!r.retryable_codes.contains(Code::Internal));
        assert_eq!(c.retry_throttling().unwrap().token_ratio, 0.123);
        assert_eq!(c.health_check_service(), Some("p.S"));
    }

    #[test]
    fn hedging() {
        let c = ServiceConfig::from_json(
            r#"{"methodConfig":[{"name":[{}],"hedgingPolicy":{"maxAttempts":3,"hedgingDelay":"0.01s","nonFatalStatusCodes":["UNAVAILABLE"]}}]}"#,
        )
        .unwrap();
        let Some(CallPolicy::Hedging(h)) = &c.method("/a.B/C").unwrap().policy else {
            panic!()
        };
        assert_eq!(h.max_attempts, 3);
        assert_eq!(h.hedging_delay, Duration::from_millis(10));
        assert!(h.non_fatal_codes.contains(Code::Unavailable));
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let retry = |body: &str| {
            format!(r#"{{"methodConfig":[{{"name":[{{}}],"retryPolicy":{{{body}}}}}]}}"#)
        };
        let ok = r#""maxAttempts":2,"initialBackoff":"1s","maxBackoff":"1s","backoffMultiplier":1,"retryableStatusCodes":["UNAVAILABLE"]"#;
        assert!(ServiceConfig::from_json(&retry(ok)).is_ok());
        for (json, field) in [
            ("[]".to_owned(), "JSON object"),
            ("{".to_owned(), "not JSON"),
            (retry(&ok.replace("\"maxAttempts\":2", "\"maxAttempts\":1")), "methodConfig[0].retryPolicy.maxAttempts"),
            (retry(&ok.replace("\"initialBackoff\":\"1s\",", "")), "retryPolicy.initialBackoff: missing"),
            (retry(&ok.replace("\"maxBackoff\":\"1s\"", "\"maxBackoff\":\"0s\"")), "retryPolicy.maxBackoff"),
            (retry(&ok.replace("\"backoffMultiplier\":1", "\"backoffMultiplier\":0")), "backoffMultiplier"),
            (retry(&ok.replace("[\"UNAVAILABLE\"]", "[]")), "retryableStatusCodes"),
            (retry(&ok.replace("[\"UNAVAILABLE\"]", "[\"NOPE\"]")), "retryableStatusCodes"),
            (retry(&ok.replace("[\"UNAVAILABLE\"]", "[\"OK\"]")), "OK"),
            (r#"{"methodConfig":[{"name":[{}],"retryPolicy":{},"hedgingPolicy":{}}]}"#.into(), "both"),
            (r#"{"methodConfig":[{"name":[{"method":"M"}]}]}"#.into(), "methodConfig[0].name[0]"),
            (r#"{"methodConfig":[{"name":[{}]},{"name":[{}]}]}"#.into(), "methodConfig[1].name[0]"),
            (r#"{"methodConfig":[{"name":[{"service":"s","method":"m"}]},{"name":[{"service":"s","method":"m"}]}]}"#.into(), "methodConfig[1].name[0]"),
            (r#"{"methodConfig":[{"name":[{}],"timeout":"soon"}]}"#.into(), "methodConfig[0].timeout"),
            (r#"{"methodConfig":[{"name":[{}],"waitForReady":"yes"}]}"#.into(), "waitForReady"),
            (r#"{"methodConfig":[{"name":[{}],"maxRequestMessageBytes":-1}]}"#.into(), "maxRequestMessageBytes"),
            (r#"{"methodConfig":[{}]}"#.into(), "methodConfig[0].name: missing"),
            (r#"{"methodConfig":[{"name":[{}],"hedgingPolicy":{"maxAttempts":"x"}}]}"#.into(), "hedgingPolicy.maxAttempts"),
            (r#"{"retryThrottling":{"maxTokens":0,"tokenRatio":1}}"#.into(), "retryThrottling.maxTokens"),
            (r#"{"retryThrottling":{"maxTokens":1001,"tokenRatio":1}}"#.into(), "retryThrottling.maxTokens"),
            (r#"{"retryThrottling":{"maxTokens":10}}"#.into(), "retryThrottling.tokenRatio"),
            (r#"{"loadBalancingConfig":[{"nope":{}}]}"#.into(), "no supported policy"),
            (r#"{"loadBalancingConfig":[{"round_robin":{},"pick_first":{}}]}"#.into(), "loadBalancingConfig[0]"),
            (r#"{"loadBalancingConfig":[{"pick_first":{"shuffleAddressList":1}}]}"#.into(), "shuffleAddressList"),
            (r#"{"loadBalancingPolicy":"weird"}"#.into(), "loadBalancingPolicy"),
            (r#"{"healthCheckConfig":{"serviceName":3}}"#.into(), "healthCheckConfig.serviceName"),
        ] {
            let e = err(&json);
            assert!(e.contains(field), "{json}\n  -> {e}\n  wanted {field}");
        }
    }

    #[test]
    fn legacy_policy_name_and_unknown_fields() {
        let c = ServiceConfig::from_json(
            r#"{"loadBalancingPolicy":"ROUND_ROBIN","futureField":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(c.load_balancing().unwrap().0, "round_robin");
    }
}
