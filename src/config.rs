//! Settings read from the environment. Every problem names the variable at fault so an
//! operator can fix a deployment from the first log line.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// Every `SIGNOFF_*` variable we understand; anything else with that prefix is a typo we refuse.
const KNOWN: &[&str] = &[
    "SIGNOFF_BIND",
    "SIGNOFF_PUBLIC_URL",
    "SIGNOFF_JWT_HS256_SECRET",
    "SIGNOFF_JWT_JWKS",
    "SIGNOFF_JWT_ISSUER",
    "SIGNOFF_JWT_AUDIENCE",
    "SIGNOFF_JWT_MAX_LIFETIME",
    "SIGNOFF_MIGRATE_ON_START",
    "SIGNOFF_DB_POOL_SIZE",
    "SIGNOFF_DB_READ_CONCURRENCY",
    "SIGNOFF_DB_TIMEOUT",
    "SIGNOFF_WORKER",
    "SIGNOFF_WEBHOOK_ALLOW_PRIVATE",
    "SIGNOFF_WEBHOOK_TIMEOUT",
    "SIGNOFF_WEBHOOK_RETRY_SCHEDULE",
    "SIGNOFF_WEBHOOK_DISABLE_AFTER",
    "SIGNOFF_WORKER_POLL_INTERVAL",
    "SIGNOFF_WEBHOOK_CONCURRENCY",
    "SIGNOFF_WEBHOOK_ENDPOINT_CONCURRENCY",
    "SIGNOFF_WEBHOOK_PROXY",
    "SIGNOFF_SECRET_KEY",
    "SIGNOFF_SECRET_KEY_PREVIOUS",
    "SIGNOFF_LINK_RATE_LIMIT",
    "SIGNOFF_CORS_ORIGINS",
];

/// The Standard Webhooks retry schedule: the first attempt at once, then after each failure.
pub const DEFAULT_RETRY_SCHEDULE: &str = "PT0S,PT5S,PT5M,PT30M,PT2H,PT5H,PT10H,PT10H";

/// A configuration problem, always naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

fn err(variable: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable: variable.to_string(),
        message: message.into(),
    }
}

/// JWT verification settings.
#[derive(Clone, Debug)]
pub struct JwtSettings {
    pub hs256_secret: Option<SecretString>,
    /// A file path or an `http(s)` URL serving a JWKS document.
    pub jwks: Option<String>,
    pub issuer: String,
    pub audience: String,
    /// The longest a token may live: `exp` minus `iat` (or minus now without `iat`).
    pub max_lifetime: Duration,
}

/// Everything the service needs to run.
#[derive(Clone, Debug)]
pub struct Settings {
    pub database_url: SecretString,
    pub bind: SocketAddr,
    pub public_url: Url,
    pub jwt: JwtSettings,
    pub migrate_on_start: bool,
    pub db_pool_size: u32,
    /// Reads (lists, GETs) that run at once; the rest wait their turn.
    pub db_read_concurrency: u32,
    /// How long a request waits for a database connection before answering 503.
    pub db_timeout: Duration,
    /// Whether this replica runs the background worker (webhooks, timers).
    pub worker: bool,
    pub webhook_allow_private: bool,
    pub webhooks: WebhookSettings,
    /// Requests per minute one client address may make to the link endpoints and page.
    pub link_rate_limit: u32,
    /// Keys that seal secrets at rest (`SIGNOFF_SECRET_KEY`, `SIGNOFF_SECRET_KEY_PREVIOUS`);
    /// `None` stores them in the clear.
    pub secret_keys: Option<std::sync::Arc<crate::secrets::SecretKeys>>,
    /// Browser origins (`scheme://host[:port]`) allowed to call the API cross-origin; empty
    /// means none.
    pub cors_origins: Vec<String>,
}

/// How webhooks are delivered.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Longest wait for a receiver's answer.
    pub timeout: Duration,
    /// Delay before each attempt: the first is the delay of the first attempt (usually zero),
    /// then one per failure. Its length is the number of attempts.
    pub retry_schedule: Vec<Duration>,
    /// An endpoint failing without a success for this long is disabled.
    pub disable_after: Duration,
    /// How often the worker looks for due work when no notification wakes it.
    pub poll_interval: Duration,
    /// Attempts in flight at once on one replica (`SIGNOFF_WEBHOOK_CONCURRENCY`).
    pub concurrency: usize,
    /// Attempts in flight at once to one endpoint on one replica, so a slow receiver holds
    /// only its own slots (`SIGNOFF_WEBHOOK_ENDPOINT_CONCURRENCY`).
    pub endpoint_concurrency: usize,
    /// The only proxy deliveries go through (`SIGNOFF_WEBHOOK_PROXY`); proxy variables of the
    /// environment (`HTTPS_PROXY`, ...) are ignored.
    pub proxy: Option<Url>,
}

fn duration(env: &dyn Env, key: &str, default: &str) -> Result<Duration, ConfigError> {
    let text = env.get(key).unwrap_or_else(|| default.to_string());
    crate::domain::duration::IsoDuration::parse_precise(&text)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| err(key, format!("{text:?} is not a positive ISO 8601 duration")))
}

/// `SIGNOFF_CORS_ORIGINS`: comma-separated origins, each `http(s)://host[:port]` with no path.
fn cors_origins(env: &dyn Env) -> Result<Vec<String>, ConfigError> {
    let key = "SIGNOFF_CORS_ORIGINS";
    let Some(text) = env.get(key) else {
        return Ok(vec![]);
    };
    text.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            let url = Url::parse(o).map_err(|_| err(key, format!("{o:?} is not an origin")))?;
            let origin = url.origin().ascii_serialization();
            if !matches!(url.scheme(), "http" | "https")
                || origin != o.trim_end_matches('/')
                || url.path() != "/"
            {
                return Err(err(
                    key,
                    format!("{o:?} is not an origin like https://host.example:8443"),
                ));
            }
            Ok(origin)
        })
        .collect()
}

impl WebhookSettings {
    fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let key = "SIGNOFF_WEBHOOK_RETRY_SCHEDULE";
        let text = env
            .get(key)
            .unwrap_or_else(|| DEFAULT_RETRY_SCHEDULE.to_string());
        let retry_schedule = text
            .split(',')
            .map(|part| crate::domain::duration::IsoDuration::parse_precise(part.trim()))
            .collect::<Result<Vec<_>, _>>()
            .ok()
            .filter(|s| !s.is_empty() && s.len() <= 50)
            .ok_or_else(|| {
                err(
                    key,
                    "must be a comma-separated list of ISO 8601 durations, e.g. PT0S,PT5S,PT5M",
                )
            })?;
        let count = |key: &str, default: usize| -> Result<usize, ConfigError> {
            match env.get(key) {
                None => Ok(default),
                Some(v) => v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| err(key, "must be a whole number from 1 to 10000")),
            }
        };
        let concurrency = count("SIGNOFF_WEBHOOK_CONCURRENCY", 64)?;
        let endpoint_concurrency =
            count("SIGNOFF_WEBHOOK_ENDPOINT_CONCURRENCY", 8.min(concurrency))?;
        let proxy = match env.get("SIGNOFF_WEBHOOK_PROXY") {
            None => None,
            Some(v) => Some(
                Url::parse(&v)
                    .ok()
                    .filter(|u| {
                        matches!(u.scheme(), "http" | "https" | "socks5" | "socks5h")
                            && u.host().is_some()
                    })
                    .ok_or_else(|| {
                        err(
                            "SIGNOFF_WEBHOOK_PROXY",
                            "must be an http://, https:// or socks5:// proxy URL",
                        )
                    })?,
            ),
        };
        Ok(Self {
            timeout: duration(env, "SIGNOFF_WEBHOOK_TIMEOUT", "PT15S")?,
            retry_schedule,
            disable_after: duration(env, "SIGNOFF_WEBHOOK_DISABLE_AFTER", "P5D")?,
            poll_interval: duration(env, "SIGNOFF_WORKER_POLL_INTERVAL", "PT1S")?,
            concurrency,
            endpoint_concurrency,
            proxy,
        })
    }
}

/// A source of variables: the process environment, or a map in tests.
pub trait Env {
    fn get(&self, key: &str) -> Option<String>;
    fn keys(&self) -> Vec<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
    fn keys(&self) -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .collect()
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned().filter(|v| !v.is_empty())
    }
    fn keys(&self) -> Vec<String> {
        HashMap::keys(self).cloned().collect()
    }
}

fn parse_bool(env: &dyn Env, key: &str, default: bool) -> Result<bool, ConfigError> {
    match env.get(key).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(err(key, format!("expected true or false, got {other:?}"))),
    }
}

fn require(env: &dyn Env, key: &str) -> Result<String, ConfigError> {
    env.get(key)
        .ok_or_else(|| err(key, "is required but not set"))
}

/// Refuses `SIGNOFF_*` variables we do not know, so a misspelt setting is not silently ignored.
fn check_unknown(env: &dyn Env) -> Result<(), ConfigError> {
    let mut unknown: Vec<String> = env
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("SIGNOFF_") && !KNOWN.contains(&k.as_str()))
        .collect();
    unknown.sort();
    match unknown.first() {
        Some(k) => Err(err(k, "is not a known setting")),
        None => Ok(()),
    }
}

/// `SIGNOFF_JWT_MAX_LIFETIME`: tokens whose `exp` lies further than this from their `iat`
/// (or from now, without `iat`) are refused.
fn max_lifetime(env: &dyn Env) -> Result<Duration, ConfigError> {
    let key = "SIGNOFF_JWT_MAX_LIFETIME";
    let text = env.get(key).unwrap_or_else(|| "P1D".to_string());
    crate::domain::duration::IsoDuration::parse_precise(&text)
        .ok()
        .filter(|d| d.as_secs() >= 1)
        .ok_or_else(|| {
            err(
                key,
                format!(
                    "{text:?} is not a positive ISO 8601 duration such as P1D or PT12H; it is \
                     the longest a token may live, from its `iat` (or from now without one); \
                     the default is P1D"
                ),
            )
        })
}

impl JwtSettings {
    /// Reads the JWT settings alone (used by `signoff token`, which needs no database).
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let hs256_secret = env.get("SIGNOFF_JWT_HS256_SECRET");
        if let Some(secret) = &hs256_secret
            && secret.len() < 32
        {
            return Err(err(
                "SIGNOFF_JWT_HS256_SECRET",
                "must be at least 32 characters long",
            ));
        }
        let jwks = env.get("SIGNOFF_JWT_JWKS");
        if hs256_secret.is_none() && jwks.is_none() {
            return Err(err(
                "SIGNOFF_JWT_HS256_SECRET",
                "set it or SIGNOFF_JWT_JWKS: without a key no request can be authenticated",
            ));
        }
        if let Some(source) = &jwks
            && (source.starts_with("http://") || source.starts_with("https://"))
            && Url::parse(source).is_err()
        {
            return Err(err("SIGNOFF_JWT_JWKS", "is not a valid URL"));
        }
        Ok(Self {
            hs256_secret: hs256_secret.map(SecretString::from),
            jwks,
            issuer: require(env, "SIGNOFF_JWT_ISSUER")?,
            audience: require(env, "SIGNOFF_JWT_AUDIENCE")?,
            max_lifetime: max_lifetime(env)?,
        })
    }
}

impl Settings {
    /// Reads and validates every setting.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        check_unknown(env)?;
        let database_url = require(env, "DATABASE_URL")?;
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            return Err(err(
                "DATABASE_URL",
                "must be a postgres:// or postgresql:// URL",
            ));
        }
        let bind_text = env
            .get("SIGNOFF_BIND")
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind: SocketAddr = bind_text
            .parse()
            .map_err(|_| err("SIGNOFF_BIND", format!("{bind_text:?} is not host:port")))?;
        let public_text = env
            .get("SIGNOFF_PUBLIC_URL")
            .unwrap_or_else(|| format!("http://{bind}"));
        let public_url = Url::parse(&public_text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                err(
                    "SIGNOFF_PUBLIC_URL",
                    format!("{public_text:?} is not an http(s) URL"),
                )
            })?;
        let db_pool_size = match env.get("SIGNOFF_DB_POOL_SIZE") {
            None => 10,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=500).contains(n))
                .ok_or_else(|| err("SIGNOFF_DB_POOL_SIZE", "must be a number from 1 to 500"))?,
        };
        let db_read_concurrency = match env.get("SIGNOFF_DB_READ_CONCURRENCY") {
            // As many as this host has cores: a read costs Postgres about what it costs us.
            None => std::thread::available_parallelism().map_or(2, |n| n.get() as u32),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=500).contains(n))
                .ok_or_else(|| {
                    err(
                        "SIGNOFF_DB_READ_CONCURRENCY",
                        "must be a number from 1 to 500",
                    )
                })?,
        };
        let db_timeout = match env.get("SIGNOFF_DB_TIMEOUT") {
            None => Duration::from_secs(5),
            Some(v) => crate::domain::duration::IsoDuration::parse(&v)
                .ok()
                .filter(|d| d.seconds > 0)
                .map(|d| Duration::from_secs(d.seconds as u64))
                .ok_or_else(|| {
                    err(
                        "SIGNOFF_DB_TIMEOUT",
                        "must be a positive ISO 8601 duration such as PT5S",
                    )
                })?,
        };
        Ok(Self {
            database_url: SecretString::from(database_url),
            bind,
            public_url,
            jwt: JwtSettings::from_env(env)?,
            migrate_on_start: parse_bool(env, "SIGNOFF_MIGRATE_ON_START", true)?,
            db_pool_size,
            db_read_concurrency,
            db_timeout,
            worker: parse_bool(env, "SIGNOFF_WORKER", true)?,
            webhook_allow_private: parse_bool(env, "SIGNOFF_WEBHOOK_ALLOW_PRIVATE", false)?,
            webhooks: WebhookSettings::from_env(env)?,
            secret_keys: match env.get("SIGNOFF_SECRET_KEY") {
                None if env.get("SIGNOFF_SECRET_KEY_PREVIOUS").is_some() => {
                    return Err(err(
                        "SIGNOFF_SECRET_KEY_PREVIOUS",
                        "needs SIGNOFF_SECRET_KEY: previous keys only open what the current key replaced",
                    ));
                }
                None => None,
                Some(current) => Some(std::sync::Arc::new(
                    crate::secrets::SecretKeys::parse(
                        &current,
                        env.get("SIGNOFF_SECRET_KEY_PREVIOUS").as_deref(),
                    )
                    .map_err(|(is_current, e)| {
                        err(
                            if is_current {
                                "SIGNOFF_SECRET_KEY"
                            } else {
                                "SIGNOFF_SECRET_KEY_PREVIOUS"
                            },
                            e,
                        )
                    })?,
                )),
            },
            link_rate_limit: match env.get("SIGNOFF_LINK_RATE_LIMIT") {
                None => 60,
                Some(v) => v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    err(
                        "SIGNOFF_LINK_RATE_LIMIT",
                        "must be a whole number of requests per minute, at least 1",
                    )
                })?,
            },
            cors_origins: cors_origins(env)?,
        })
    }

    /// The database URL, for the few places that must see it.
    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("DATABASE_URL", "postgres://localhost/signoff"),
            (
                "SIGNOFF_JWT_HS256_SECRET",
                "0123456789abcdef0123456789abcdef",
            ),
            ("SIGNOFF_JWT_ISSUER", "https://issuer.example"),
            ("SIGNOFF_JWT_AUDIENCE", "signoff"),
        ]
    }

    #[test]
    fn complete_environment_is_accepted_with_defaults() {
        let s = Settings::from_env(&env(&base())).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.public_url.as_str(), "http://127.0.0.1:8080/");
        assert!(s.migrate_on_start);
        assert_eq!(s.jwt.max_lifetime, Duration::from_secs(86_400));
    }

    #[test]
    fn read_concurrency_defaults_to_the_cores() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
        let s = Settings::from_env(&env(&base())).unwrap();
        assert_eq!(s.db_read_concurrency, cores);
        let mut e = env(&base());
        e.insert("SIGNOFF_DB_READ_CONCURRENCY".into(), "6".into());
        assert_eq!(Settings::from_env(&e).unwrap().db_read_concurrency, 6);
    }

    #[test]
    fn the_max_token_lifetime_message_says_what_it_is_and_its_default() {
        let mut e = env(&base());
        e.insert("SIGNOFF_JWT_MAX_LIFETIME".into(), "forever".into());
        let message = Settings::from_env(&e).unwrap_err().to_string();
        assert!(
            message.starts_with("SIGNOFF_JWT_MAX_LIFETIME: "),
            "{message}"
        );
        assert!(
            message.contains("`iat`") && message.contains("P1D"),
            "{message}"
        );
        e.insert("SIGNOFF_JWT_MAX_LIFETIME".into(), "PT12H".into());
        let s = Settings::from_env(&e).unwrap();
        assert_eq!(s.jwt.max_lifetime, Duration::from_secs(12 * 3600));
    }

    #[test]
    fn each_problem_names_its_variable() {
        let cases: Vec<(&str, Option<&str>)> = vec![
            ("DATABASE_URL", None),
            ("DATABASE_URL", Some("mysql://x")),
            ("SIGNOFF_BIND", Some("nonsense")),
            ("SIGNOFF_PUBLIC_URL", Some("ftp://x")),
            ("SIGNOFF_JWT_HS256_SECRET", Some("short")),
            ("SIGNOFF_JWT_ISSUER", None),
            ("SIGNOFF_JWT_AUDIENCE", None),
            ("SIGNOFF_DB_POOL_SIZE", Some("0")),
            ("SIGNOFF_DB_READ_CONCURRENCY", Some("0")),
            ("SIGNOFF_MIGRATE_ON_START", Some("maybe")),
            ("SIGNOFF_TYPO", Some("1")),
            ("SIGNOFF_WEBHOOK_TIMEOUT", Some("15")),
            ("SIGNOFF_WEBHOOK_RETRY_SCHEDULE", Some("PT1S,soon")),
            ("SIGNOFF_WEBHOOK_CONCURRENCY", Some("0")),
            ("SIGNOFF_WEBHOOK_ENDPOINT_CONCURRENCY", Some("many")),
            ("SIGNOFF_WEBHOOK_PROXY", Some("not a url")),
            ("SIGNOFF_SECRET_KEY", Some("too-short")),
            ("SIGNOFF_SECRET_KEY_PREVIOUS", Some("AAAA")),
            ("SIGNOFF_JWT_MAX_LIFETIME", Some("1 day")),
            ("SIGNOFF_JWT_MAX_LIFETIME", Some("PT0S")),
            ("SIGNOFF_CORS_ORIGINS", Some("https://a.example/path")),
            ("SIGNOFF_CORS_ORIGINS", Some("*")),
        ];
        for (key, value) in cases {
            let mut e = env(&base());
            match value {
                Some(v) => {
                    e.insert(key.to_string(), v.to_string());
                }
                None => {
                    e.remove(key);
                }
            }
            let error = Settings::from_env(&e).unwrap_err();
            assert_eq!(error.variable, key, "{error}");
        }
    }

    #[test]
    fn cors_origins_are_a_comma_separated_list_defaulting_to_none() {
        assert!(
            Settings::from_env(&env(&base()))
                .unwrap()
                .cors_origins
                .is_empty()
        );
        let mut e = env(&base());
        e.insert(
            "SIGNOFF_CORS_ORIGINS".into(),
            "https://portal.example, http://127.0.0.1:3000".into(),
        );
        assert_eq!(
            Settings::from_env(&e).unwrap().cors_origins,
            ["https://portal.example", "http://127.0.0.1:3000"]
        );
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let s = Settings::from_env(&env(&base())).unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("0123456789abcdef"));
        assert!(!shown.contains("postgres://localhost"));
    }
}
