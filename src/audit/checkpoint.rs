//! Signed checkpoints: the chain's head (sequence and hash) at a time, signed with an Ed25519 key kept outside the
//! database, stored beside the records and appended to an outside witness file. Someone who rewrites records and head
//! without the key cannot make them match a checkpoint. Format and rotation: docs/operations.md, "Signed checkpoints".

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, ED25519};
use sqlx::Row;

use crate::store::{Store, StoreError};

/// What the signed message starts with: names the format, so a signature made for anything else never verifies.
const DOMAIN: &str = "kyc-gateway audit checkpoint v1\n";

/// The longest key id.
pub const KEY_ID_MAX: usize = 64;

/// A key id: 1 to 64 of `A-Z a-z 0-9 . _ -` (no separator of the signed message or of `id=key` can occur in it).
pub fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= KEY_ID_MAX
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The key checkpoints are signed with, and its id. `Debug` shows the id only.
#[derive(Clone)]
pub struct SigningKey {
    id: String,
    pair: Arc<Ed25519KeyPair>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// From the base64 of the 32-byte Ed25519 seed (what `kyc-gateway audit keygen` prints).
    pub fn from_seed_base64(id: &str, seed: &str) -> Result<SigningKey, String> {
        if !valid_key_id(id) {
            return Err(format!("the key id {id:?} is not 1 to {KEY_ID_MAX} of A-Z a-z 0-9 . _ -"));
        }
        let seed = BASE64
            .decode(seed.trim())
            .ok()
            .filter(|bytes| bytes.len() == 32)
            .ok_or("the signing key is not the base64 of 32 bytes (an Ed25519 seed)")?;
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| "the signing key is not an Ed25519 seed")?;
        Ok(SigningKey { id: id.to_owned(), pair: Arc::new(pair) })
    }

    /// A new key from the operating system's generator, and its seed in base64.
    pub fn generate(id: &str) -> Result<(SigningKey, String), String> {
        use ring::rand::SecureRandom;
        let mut seed = [0u8; 32];
        ring::rand::SystemRandom::new().fill(&mut seed).map_err(|_| "the OS random generator failed")?;
        let text = BASE64.encode(seed);
        seed.fill(0);
        Ok((SigningKey::from_seed_base64(id, &text)?, text))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The public key, base64 of its 32 bytes (what `audit verify --key ID=KEY` takes).
    pub fn public_base64(&self) -> String {
        BASE64.encode(self.pair.public_key().as_ref())
    }

    /// The checkpoint of the head `(seq, hash)` at `at` (unix ms).
    pub fn sign(&self, seq: i64, hash: &str, at: i64) -> Checkpoint {
        let message = message(seq, hash, at, &self.id);
        let signature = BASE64.encode(self.pair.sign(&message).as_ref());
        Checkpoint { seq, hash: hash.to_owned(), at, key_id: self.id.clone(), signature }
    }
}

/// The public keys `audit verify` checks signatures with, by key id (old keys kept after a rotation).
#[derive(Debug, Clone, Default)]
pub struct PublicKeys(Vec<(String, [u8; 32])>);

impl PublicKeys {
    /// Adds `ID=BASE64` (a `--key`, or a line of a keys file).
    pub fn add(&mut self, text: &str) -> Result<(), String> {
        let (id, key) =
            text.trim().split_once('=').ok_or("give a key as ID=BASE64 (the key id, then the public key)")?;
        let id = id.trim();
        if !valid_key_id(id) {
            return Err(format!("the key id {id:?} is not 1 to {KEY_ID_MAX} of A-Z a-z 0-9 . _ -"));
        }
        let key: [u8; 32] = BASE64
            .decode(key.trim())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| format!("the public key of {id:?} is not the base64 of 32 bytes"))?;
        match self.0.iter().find(|(known, _)| known == id) {
            Some((_, other)) if *other != key => Err(format!("the key id {id:?} is given twice, with different keys")),
            Some(_) => Ok(()),
            None => {
                self.0.push((id.to_owned(), key));
                Ok(())
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(id, _)| id.as_str())
    }

    fn get(&self, id: &str) -> Option<&[u8; 32]> {
        self.0.iter().find(|(known, _)| known == id).map(|(_, key)| key)
    }
}

/// A signed checkpoint: the head was record `seq` with hash `hash` at `at` (unix ms), signed by key `key_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub at: i64,
    pub key_id: String,
    /// Base64 of the 64-byte Ed25519 signature over [`message`].
    pub signature: String,
}

/// Why a checkpoint's signature does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsigned {
    /// No given public key has its key id.
    UnknownKey,
    /// The signature is not that key's over the checkpoint's fields.
    BadSignature,
}

impl Checkpoint {
    /// Checks the signature against the key of its id (ring's Ed25519 verification).
    pub fn check(&self, keys: &PublicKeys) -> Result<(), Unsigned> {
        let key = keys.get(&self.key_id).ok_or(Unsigned::UnknownKey)?;
        let signature = BASE64.decode(self.signature.as_bytes()).map_err(|_| Unsigned::BadSignature)?;
        UnparsedPublicKey::new(&ED25519, key)
            .verify(&message(self.seq, &self.hash, self.at, &self.key_id), &signature)
            .map_err(|_| Unsigned::BadSignature)
    }

    /// The checkpoint as a line of the export and of the witness file:
    /// `{"checkpoint":{"seq":..,"hash":..,"at":"<RFC 3339, ms>","key_id":..,"signature":..}}`.
    pub fn line(&self) -> String {
        let at = super::read::rfc3339(self.at).map_or_else(|| self.at.into(), serde_json::Value::String);
        serde_json::json!({ "checkpoint": {
            "seq": self.seq, "hash": self.hash, "at": at, "key_id": self.key_id, "signature": self.signature,
        }})
        .to_string()
    }

    /// A checkpoint line back (`None` for any other line, e.g. a record's in an export).
    pub fn from_line(line: &str) -> Option<Result<Checkpoint, String>> {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        let c = value.get("checkpoint")?;
        let text = |name: &str| c.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let at = match c.get("at") {
            Some(serde_json::Value::String(at)) => crate::domain::events::rfc3339_millis(at),
            Some(at) => at.as_i64(),
            None => None,
        };
        Some(match (c.get("seq").and_then(|v| v.as_i64()), text("hash"), at, text("key_id"), text("signature")) {
            (Some(seq), Some(hash), Some(at), Some(key_id), Some(signature)) => {
                Ok(Checkpoint { seq, hash, at, key_id, signature })
            }
            _ => Err("a checkpoint line lacks seq, hash, at, key_id or signature".to_owned()),
        })
    }
}

/// The signed bytes, UTF-8 text in this order, each line ending in `\n`:
/// `kyc-gateway audit checkpoint v1`, `seq=<decimal>`, `hash=<the head's hash>`, `at=<unix ms, decimal>`,
/// `key_id=<key id>`. None of the values can hold a line break (key ids are checked, hashes are hex).
pub fn message(seq: i64, hash: &str, at: i64, key_id: &str) -> Vec<u8> {
    format!("{DOMAIN}seq={seq}\nhash={hash}\nat={at}\nkey_id={key_id}\n").into_bytes()
}

/// When and with what the writer signs checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointSettings {
    /// No key: no checkpoints.
    pub key: Option<SigningKey>,
    /// A checkpoint once this replica appended this many records since its last one...
    pub every_records: u64,
    /// ...or this long after its last one, when records were appended since.
    pub every: Duration,
    /// The file of the outside party (the witness) each checkpoint is also appended to.
    pub witness: Option<PathBuf>,
}

impl Default for CheckpointSettings {
    fn default() -> Self {
        CheckpointSettings { key: None, every_records: 1_000, every: Duration::from_secs(60), witness: None }
    }
}

/// The columns of a stored checkpoint.
const COLUMNS: &str = "seq, hash, at, key_id, signature";

/// Signs the head when it moved past the newest stored checkpoint, and stores the checkpoint; `None` when nothing
/// was appended since.
pub async fn sign_head(store: &Store, key: &SigningKey) -> Result<Option<Checkpoint>, StoreError> {
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(store.pool()).await?;
    let (seq, hash): (i64, String) = (head.try_get("seq")?, head.try_get("hash")?);
    let newest: Option<i64> =
        sqlx::query_scalar("SELECT MAX(seq) FROM audit_signed_checkpoints").fetch_one(store.pool()).await?;
    if seq == 0 || newest.is_some_and(|newest| newest >= seq) {
        return Ok(None);
    }
    let checkpoint = key.sign(seq, &hash, crate::clock::unix_millis());
    sqlx::query(&format!(
        "INSERT INTO audit_signed_checkpoints ({COLUMNS}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
    ))
    .bind(checkpoint.seq)
    .bind(&checkpoint.hash)
    .bind(checkpoint.at)
    .bind(&checkpoint.key_id)
    .bind(&checkpoint.signature)
    .execute(store.pool())
    .await?;
    Ok(Some(checkpoint))
}

/// The stored checkpoints of records `after < seq <= up_to`, by sequence, read through `executor`.
pub async fn stored<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    after: i64,
    up_to: i64,
) -> Result<Vec<Checkpoint>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_signed_checkpoints WHERE seq > $1 AND seq <= $2 ORDER BY seq, key_id"
    ))
    .bind(after)
    .bind(up_to)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Checkpoint {
                seq: row.try_get("seq")?,
                hash: row.try_get("hash")?,
                at: row.try_get("at")?,
                key_id: row.try_get("key_id")?,
                signature: row.try_get("signature")?,
            })
        })
        .collect()
}

/// Appends `checkpoint`'s line to the witness file and syncs it to disk.
pub async fn witness(path: PathBuf, checkpoint: &Checkpoint) -> std::io::Result<()> {
    let line = checkpoint.line() + "\n";
    let written = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        file.write_all(line.as_bytes())?;
        file.sync_data()
    })
    .await;
    written.unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032, section 7.1, test 1.
    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn key(id: &str) -> SigningKey {
        SigningKey::from_seed_base64(id, &BASE64.encode(hex::decode(SEED).expect("hex"))).expect("a key")
    }

    fn keys(text: &[&str]) -> PublicKeys {
        let mut keys = PublicKeys::default();
        for text in text {
            keys.add(text).expect("a public key");
        }
        keys
    }

    #[test]
    fn the_signed_bytes_are_the_documented_text() {
        let message = message(42, &"ab".repeat(32), 1_767_225_600_123, "k-2026.1");
        assert_eq!(
            String::from_utf8(message).expect("utf-8"),
            format!(
                "kyc-gateway audit checkpoint v1\nseq=42\nhash={}\nat=1767225600123\nkey_id=k-2026.1\n",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn a_key_from_the_rfc_8032_seed_has_its_public_key_and_signs_as_ed25519() {
        let key = key("k1");
        assert_eq!(hex::encode(BASE64.decode(key.public_base64()).expect("base64")), PUBLIC);
        // Ed25519 is deterministic: the same checkpoint always has this signature (an operator can check it with any
        // Ed25519 implementation over the text of `the_signed_bytes_are_the_documented_text`).
        let checkpoint = key.sign(42, &"ab".repeat(32), 1_767_225_600_123);
        let again = key.sign(42, &"ab".repeat(32), 1_767_225_600_123);
        assert_eq!(checkpoint, again);
        let public = UnparsedPublicKey::new(&ED25519, hex::decode(PUBLIC).expect("hex"));
        let signature = BASE64.decode(&checkpoint.signature).expect("base64");
        assert_eq!(signature.len(), 64);
        public.verify(&message(42, &"ab".repeat(32), 1_767_225_600_123, "k1"), &signature).expect("verifies");
        // RFC 8032's own vector: the empty message.
        let rfc = key.pair.sign(b"");
        assert_eq!(
            hex::encode(rfc.as_ref()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f05\
             95bbe24655141438e7a100b"
        );
    }

    #[test]
    fn a_checkpoint_verifies_with_its_key_and_not_once_any_field_changed() {
        let key = key("k1");
        let public = keys(&[&format!("k1={}", key.public_base64())]);
        let checkpoint = key.sign(7, &"cd".repeat(32), 1_000);
        assert_eq!(checkpoint.check(&public), Ok(()));
        let changed = [
            Checkpoint { seq: 8, ..checkpoint.clone() },
            Checkpoint { hash: "ce".repeat(32), ..checkpoint.clone() },
            Checkpoint { at: 1_001, ..checkpoint.clone() },
            Checkpoint { signature: BASE64.encode([0u8; 64]), ..checkpoint.clone() },
            Checkpoint { signature: "not base64".into(), ..checkpoint.clone() },
        ];
        for changed in changed {
            assert_eq!(changed.check(&public), Err(Unsigned::BadSignature), "{changed:?}");
        }
        let renamed = Checkpoint { key_id: "k2".into(), ..checkpoint.clone() };
        assert_eq!(renamed.check(&public), Err(Unsigned::UnknownKey));
        // The same id with another key: the signature is not that key's.
        let (other, _) = SigningKey::generate("k1").expect("a key");
        assert_eq!(other.sign(7, &"cd".repeat(32), 1_000).check(&public), Err(Unsigned::BadSignature));
    }

    #[test]
    fn a_checkpoint_line_reads_back_as_written_and_other_lines_are_not_checkpoints() {
        let checkpoint = key("k1").sign(3, &"ef".repeat(32), 1_767_225_600_123);
        let line = checkpoint.line();
        assert!(line.contains(r#""at":"2026-01-01T00:00:00.123Z""#), "{line}");
        assert_eq!(Checkpoint::from_line(&line), Some(Ok(checkpoint)));
        assert_eq!(Checkpoint::from_line(r#"{"seq":1,"hash":"x"}"#), None);
        assert!(matches!(Checkpoint::from_line(r#"{"checkpoint":{"seq":1}}"#), Some(Err(_))));
    }

    #[test]
    fn keys_and_key_ids_are_checked_when_given() {
        assert!(valid_key_id("k-2026.01_a") && !valid_key_id("") && !valid_key_id("a b") && !valid_key_id("a\nb"));
        assert!(!valid_key_id(&"k".repeat(KEY_ID_MAX + 1)));
        assert!(SigningKey::from_seed_base64("k1", "c2hvcnQ=").is_err());
        assert!(SigningKey::from_seed_base64("a=b", &BASE64.encode([1u8; 32])).is_err());
        let mut public = PublicKeys::default();
        assert!(public.add("no-separator").is_err());
        assert!(public.add("k1=c2hvcnQ=").is_err());
        let one = key("k1").public_base64();
        public.add(&format!("k1={one}")).expect("added");
        public.add(&format!(" k1 = {one} ")).expect("the same key again");
        assert!(public.add(&format!("k1={}", BASE64.encode([9u8; 32]))).is_err(), "one id, two keys");
        assert_eq!(public.ids().collect::<Vec<_>>(), ["k1"]);
        assert!(!format!("{:?}", key("k1")).contains(&one), "Debug shows the id only");
    }
}
