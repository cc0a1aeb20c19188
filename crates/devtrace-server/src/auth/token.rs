//! What a devtrace API token looks like, and how its secret is kept.
//!
//! `dtk_` + 8 characters of public id + 32 characters of secret + 6 characters of checksum,
//! all base62 (50 characters in all). The prefix and the checksum (CRC-32 of everything
//! before it) let secret scanners recognise a leaked token without asking the server, and let
//! devtrace refuse a mistyped one without a database lookup. `dtk_` and the id (`dtk_AbCd1234`)
//! are public: they name the token in listings and logs. The secret is shown once, when the
//! token is made; the store keeps a random salt and the BLAKE3 hash of salt and secret.
//! (A slow password hash would add nothing: the secret is 190 random bits, not a password.)

use devtrace_store::{NewToken, ProjectId};
use std::fmt;

pub const PREFIX: &str = "dtk_";
const ID_CHARS: usize = 8;
const SECRET_CHARS: usize = 32;
const CHECKSUM_CHARS: usize = 6;
/// Characters in a whole token.
pub const TOKEN_CHARS: usize = PREFIX.len() + ID_CHARS + SECRET_CHARS + CHECKSUM_CHARS;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const HASH_CONTEXT: &str = "devtrace 2026-11 API token secret v1";

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Send spans, logs and sessions.
    Ingest,
    /// Query: the CLI against a server, REST, MCP, the web UI.
    Read,
    /// Start QA jobs.
    Qa,
    /// Manage tokens, projects and retention; implies every other scope, on every project.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Ingest, Scope::Read, Scope::Qa, Scope::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Qa => "qa",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(text.trim()))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A token taken apart: its public id (`dtk_…`, 12 characters) and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Presented {
    pub public_id: String,
    secret: String,
}

impl fmt::Debug for Presented {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Presented({}…)", self.public_id)
    }
}

/// Why a string is not a devtrace token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("not a devtrace token (they start with dtk_)")]
    Prefix,
    #[error("not a devtrace token (a token is {TOKEN_CHARS} characters)")]
    Length,
    #[error("not a devtrace token (it has characters a token never has)")]
    Characters,
    #[error("the token's checksum does not match: it was mistyped or cut short")]
    Checksum,
}

/// Takes a token apart, checking its form and checksum (no lookup).
pub fn parse(text: &str) -> Result<Presented, Malformed> {
    let text = text.trim();
    let Some(body) = text.strip_prefix(PREFIX) else {
        return Err(Malformed::Prefix);
    };
    if text.len() != TOKEN_CHARS {
        return Err(Malformed::Length);
    }
    if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Malformed::Characters);
    }
    let (signed, checksum) = text.split_at(TOKEN_CHARS - CHECKSUM_CHARS);
    if checksum_of(signed) != checksum {
        return Err(Malformed::Checksum);
    }
    let (public_id, secret) = signed.split_at(PREFIX.len() + ID_CHARS);
    Ok(Presented {
        public_id: public_id.to_owned(),
        secret: secret.to_owned(),
    })
}

impl Presented {
    /// Whether this secret is the one `stored` was made for (constant-time comparison).
    pub fn matches(&self, stored: &NewToken) -> bool {
        self.public_id == stored.public_id
            && blake3::Hash::from(stored.hash) == hash(&stored.salt, &self.secret)
    }
}

/// A new token: the text to show once, and what to store.
pub struct Minted {
    pub token: String,
    pub stored: NewToken,
}

impl fmt::Debug for Minted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Minted({}…)", self.stored.public_id)
    }
}

/// Makes a token for `project` with `scopes`.
pub fn mint(
    project: ProjectId,
    name: &str,
    scopes: &[Scope],
    now_unix_nano: u64,
    expires_unix_nano: Option<u64>,
) -> std::io::Result<Minted> {
    let id = random_base62(ID_CHARS)?;
    let secret = random_base62(SECRET_CHARS)?;
    let signed = format!("{PREFIX}{id}{secret}");
    let token = format!("{signed}{}", checksum_of(&signed));
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut scopes: Vec<Scope> = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    Ok(Minted {
        stored: NewToken {
            public_id: format!("{PREFIX}{id}"),
            project,
            name: name.to_owned(),
            scopes: scopes.iter().map(|s| s.name().to_owned()).collect(),
            salt,
            hash: *hash(&salt, &secret).as_bytes(),
            created_unix_nano: now_unix_nano,
            expires_unix_nano,
        },
        token,
    })
}

fn hash(salt: &[u8; 16], secret: &str) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new_derive_key(HASH_CONTEXT);
    hasher.update(salt);
    hasher.update(secret.as_bytes());
    hasher.finalize()
}

/// CRC-32 of `signed` as 6 base62 characters.
fn checksum_of(signed: &str) -> String {
    let mut value = u64::from(crc32fast::hash(signed.as_bytes()));
    let mut out = [b'0'; CHECKSUM_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ASCII")
}

/// `n` uniformly random base62 characters (bytes ≥ 248 are redrawn, so none is favoured).
fn random_base62(n: usize) -> std::io::Result<String> {
    let mut out = String::with_capacity(n);
    let mut pool = [0u8; 64];
    while out.len() < n {
        getrandom::fill(&mut pool).map_err(|e| std::io::Error::other(e.to_string()))?;
        for byte in pool {
            if byte < 248 && out.len() < n {
                out.push(BASE62[(byte % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_parses_and_matches_only_its_own_hash() {
        let minted = mint(
            ProjectId(3),
            "ci",
            &[Scope::Read, Scope::Ingest, Scope::Read],
            1,
            None,
        )
        .unwrap();
        assert_eq!(minted.token.len(), TOKEN_CHARS);
        assert!(minted.token.starts_with("dtk_"));
        assert!(minted.token.starts_with(&minted.stored.public_id));
        assert_eq!(minted.stored.public_id.len(), 12);
        assert_eq!(minted.stored.scopes, ["ingest", "read"]);
        assert!(
            !format!("{minted:?}").contains(&minted.token[12..]),
            "Debug hides the secret"
        );
        let presented = parse(&minted.token).unwrap();
        assert!(presented.matches(&minted.stored));
        assert!(!format!("{presented:?}").contains(&minted.token[12..]));
        let other = mint(ProjectId(3), "ci", &[Scope::Read], 1, None).unwrap();
        assert_ne!(other.token, minted.token);
        assert!(!parse(&other.token).unwrap().matches(&minted.stored));
        // The same secret under another salt does not match.
        let mut resalted = minted.stored.clone();
        resalted.salt[0] ^= 1;
        assert!(!presented.matches(&resalted));
    }

    #[test]
    fn malformed_tokens_are_told_apart() {
        let token = mint(ProjectId::DEFAULT, "x", &[Scope::Admin], 1, None)
            .unwrap()
            .token;
        assert_eq!(parse("ghp_abc").unwrap_err(), Malformed::Prefix);
        assert_eq!(parse(&token[..40]).unwrap_err(), Malformed::Length);
        let mut bad = token.clone().into_bytes();
        bad[20] = b'-';
        assert_eq!(
            parse(std::str::from_utf8(&bad).unwrap()).unwrap_err(),
            Malformed::Characters
        );
        // One character changed: the checksum catches it.
        let mut typo = token.clone().into_bytes();
        typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
        assert_eq!(
            parse(std::str::from_utf8(&typo).unwrap()).unwrap_err(),
            Malformed::Checksum
        );
        assert!(
            parse(&format!("  {token}\n")).is_ok(),
            "surrounding space is ignored"
        );
    }

    #[test]
    fn devtraces_redaction_removes_a_leaked_token() {
        let token = mint(ProjectId::DEFAULT, "ci", &[Scope::Ingest], 1, None)
            .unwrap()
            .token;
        let redactor = devtrace_ingest::redact::Redactor::builtin();
        assert_eq!(
            redactor.redact(&format!("export DEVTRACE_TOKEN={token}")),
            "export DEVTRACE_TOKEN=[REDACTED:devtrace_token]"
        );
    }

    #[test]
    fn scopes_have_names() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.name()), Some(scope));
        }
        assert_eq!(Scope::parse(" READ "), Some(Scope::Read));
        assert_eq!(Scope::parse("write"), None);
    }
}
