//! Authentication (SPEC §5): who the caller is, and which credential goes upstream.

use std::collections::HashMap;

use http::HeaderValue;
use pingora_http::RequestHeader;

use crate::catalog::Catalog;
use crate::config::{AccessKey, ACCESS_KEY_PREFIX};
use crate::error::ApiError;
use crate::secret::{constant_time_eq, Secret};
use crate::upstream::{auth_value, Upstream};

/// A configured access key, compiled.
#[derive(Debug)]
pub struct AccessEntry {
    pub name: Box<str>,
    /// Credit balance, micro-USD (`None`: unlimited).
    pub credits: Option<u64>,
    key: Secret,
    /// Per provider index: the key's own provider credential (BYOK), prebuilt.
    byok: Vec<Option<HeaderValue>>,
}

/// The access keys, looked up by a keyed hash and confirmed in constant time.
#[derive(Debug, Default)]
pub struct AccessTable {
    entries: Vec<AccessEntry>,
    by_key: HashMap<Box<[u8]>, usize, ahash::RandomState>,
}

/// Who is calling.
#[derive(Debug)]
pub enum Caller {
    /// A gateway access key (index into the table).
    Access(usize),
    /// An unknown key, passed through to the provider as the client's own credential.
    Passthrough(Secret),
}

/// What pays for a request, and the credential header that goes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Billing {
    /// The provider's managed pool: model cost plus gateway fee.
    Managed,
    /// The access key's own provider key: gateway fee only.
    Byok,
    /// The client's own provider key: counted, not charged.
    Passthrough,
    /// A provider that needs no key (and none was configured).
    Keyless,
}

impl AccessTable {
    pub fn build(keys: &[AccessKey], catalog: &Catalog) -> Result<AccessTable, String> {
        let mut table = AccessTable::default();
        for (i, k) in keys.iter().enumerate() {
            let mut byok = vec![None; catalog.providers.len()];
            for (provider, secret) in &k.provider_keys {
                let p = catalog.provider_index(provider).ok_or_else(|| {
                    format!(
                        "access key `{}` has a key for provider `{provider}`, which the catalog does not define",
                        k.name
                    )
                })?;
                let auth = catalog.providers[p].auth;
                let value = auth_value(auth, secret.expose()).ok_or_else(|| {
                    format!(
                        "access key `{}`: its `{provider}` key is not a valid header value",
                        k.name
                    )
                })?;
                byok[p] = Some(value);
            }
            table.by_key.insert(k.key.expose().as_bytes().into(), i);
            table.entries.push(AccessEntry {
                name: k.name.as_str().into(),
                credits: k.credits,
                key: k.key.clone(),
                byok,
            });
        }
        Ok(table)
    }

    /// Whether any access key has a credit balance.
    pub fn has_balances(&self) -> bool {
        self.entries.iter().any(|e| e.credits.is_some())
    }

    pub fn entry(&self, index: usize) -> Option<&AccessEntry> {
        self.entries.get(index)
    }

    /// Identifies the caller from `Authorization: Bearer KEY` or `x-api-key: KEY`.
    pub fn authenticate(&self, req: &RequestHeader, passthrough: bool) -> Result<Caller, ApiError> {
        let Some(key) = client_key(req) else {
            // A credential that is not visible ASCII is a bad key, not none.
            let unreadable = [http::header::AUTHORIZATION.as_str(), "x-api-key"]
                .iter()
                .filter_map(|name| req.headers.get(*name))
                .any(|v| v.to_str().is_err());
            return Err(match unreadable {
                true => ApiError::InvalidKey,
                false => ApiError::MissingKey,
            });
        };
        if let Some(&i) = self.by_key.get(key.as_bytes()) {
            if self
                .entries
                .get(i)
                .is_some_and(|e| constant_time_eq(e.key.expose().as_bytes(), key.as_bytes()))
            {
                return Ok(Caller::Access(i));
            }
        }
        // Any case of the prefix: a mistyped gateway key (`TG-…`) must not
        // travel to a provider as the client's own.
        let gateway_like = key
            .as_bytes()
            .get(..ACCESS_KEY_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(ACCESS_KEY_PREFIX.as_bytes()));
        if gateway_like || !passthrough {
            return Err(ApiError::InvalidKey);
        }
        Ok(Caller::Passthrough(Secret::new(key)))
    }
}

/// The client's key: `Authorization: Bearer KEY` (scheme case-insensitive), else `x-api-key`.
pub fn client_key(req: &RequestHeader) -> Option<&str> {
    if let Some(v) = req.headers.get(http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?.trim();
        let (scheme, key) = v.split_once(' ')?;
        return (scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty())
            .then(|| key.trim());
    }
    let v = req.headers.get("x-api-key")?.to_str().ok()?.trim();
    (!v.is_empty()).then_some(v)
}

/// The credential for one attempt on `provider`, with what it bills as.
/// `key_index` picks a managed key when the pool is used; `None`: no credential.
pub fn credential(
    caller: &Caller,
    table: &AccessTable,
    provider: usize,
    upstream: &Upstream,
    key_index: usize,
) -> Option<(Option<HeaderValue>, Billing, Option<usize>)> {
    match caller {
        Caller::Passthrough(secret) => auth_value(upstream.auth, secret.expose())
            .map(|v| (Some(v), Billing::Passthrough, None)),
        Caller::Access(i) => {
            let entry = table.entries.get(*i)?;
            if let Some(Some(v)) = entry.byok.get(provider) {
                return Some((Some(v.clone()), Billing::Byok, None));
            }
            let pool = &upstream.keys.keys;
            if pool.is_empty() {
                return match upstream.auth {
                    crate::catalog::AuthStyle::OptionalBearer => {
                        Some((None, Billing::Keyless, None))
                    }
                    _ => None,
                };
            }
            let k = key_index % pool.len();
            Some((
                pool.get(k).map(|p| p.header.clone()),
                Billing::Managed,
                Some(k),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/v1/chat/completions", None).unwrap();
        for (k, v) in headers {
            r.insert_header(k.to_string(), *v).unwrap();
        }
        r
    }

    fn table() -> AccessTable {
        let catalog = Catalog::embedded().unwrap();
        let keys = vec![AccessKey {
            name: "team-a".into(),
            key: Secret::new("tg-team-a"),
            provider_keys: vec![("groq".into(), Secret::new("gsk-own"))],
            credits: None,
            models: Vec::new(),
            providers: Vec::new(),
            limits: None,
        }];
        AccessTable::build(&keys, &catalog).unwrap()
    }

    #[test]
    fn bearer_and_x_api_key() {
        assert_eq!(
            client_key(&req(&[("authorization", "Bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            client_key(&req(&[("authorization", "bearer  abc ")])),
            Some("abc")
        );
        assert_eq!(client_key(&req(&[("x-api-key", "xyz")])), Some("xyz"));
        assert_eq!(client_key(&req(&[("authorization", "Basic abc")])), None);
        assert_eq!(client_key(&req(&[])), None);
    }

    #[test]
    fn access_keys_passthrough_and_refusals() {
        let t = table();
        let r = req(&[("authorization", "Bearer tg-team-a")]);
        assert!(matches!(t.authenticate(&r, true), Ok(Caller::Access(0))));
        let r = req(&[("authorization", "Bearer sk-client")]);
        assert!(matches!(
            t.authenticate(&r, true),
            Ok(Caller::Passthrough(_))
        ));
        assert!(matches!(
            t.authenticate(&r, false),
            Err(ApiError::InvalidKey)
        ));
        for unknown in ["Bearer tg-unknown", "Bearer TG-team-a", "Bearer Tg-x"] {
            let r = req(&[("authorization", unknown)]);
            assert!(
                matches!(t.authenticate(&r, true), Err(ApiError::InvalidKey)),
                "{unknown}"
            );
        }
        assert!(matches!(
            t.authenticate(&req(&[]), true),
            Err(ApiError::MissingKey)
        ));
        let mut r = req(&[]);
        r.insert_header(
            "authorization",
            http::HeaderValue::from_bytes(b"Bearer tg-\xff").unwrap(),
        )
        .unwrap();
        assert!(matches!(
            t.authenticate(&r, true),
            Err(ApiError::InvalidKey)
        ));
    }
}
