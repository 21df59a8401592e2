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

    /// Whether `checkpoint` is signed by this key, under its id.
    pub fn signed(&self, checkpoint: &Checkpoint) -> bool {
        let Ok(signature) = BASE64.decode(checkpoint.signature.as_bytes()) else { return false };
        checkpoint.key_id == self.id
            && UnparsedPublicKey::new(&ED25519, self.pair.public_key().as_ref())
                .verify(&message(checkpoint.seq, &checkpoint.hash, checkpoint.at, &checkpoint.key_id), &signature)
                .is_ok()
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

/// The most stored checkpoints of its key id the signer checks at start for its anchor.
const ANCHOR_CANDIDATES: usize = 1_000;

/// Why the signer signed nothing.
#[derive(Debug, thiserror::Error)]
pub enum NotSigned {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain does not run from the signer's anchor to the head: it refuses until restarted.
    #[error("the audit trail no longer follows the last checkpoint this gateway signed: {0}")]
    Refused(String),
}

impl From<sqlx::Error> for NotSigned {
    fn from(error: sqlx::Error) -> Self {
        NotSigned::Store(error.into())
    }
}

/// The writer's signer. It keeps the newest checkpoint it signed or verified (its anchor) in memory and signs a head
/// only after checking, in one snapshot, the records from the anchor's to the head; once they differ it refuses for
/// good, so a trail rewritten with its checkpoints deleted is never signed.
#[derive(Debug)]
pub struct Signer {
    key: SigningKey,
    /// `None` until the stored checkpoints were read.
    anchor: Option<Option<Checkpoint>>,
    refused: Option<String>,
}

impl Signer {
    pub fn new(key: SigningKey) -> Signer {
        Signer { key, anchor: None, refused: None }
    }

    /// Takes the newest stored checkpoint signed with this key as the anchor; rows of its key id that do not verify
    /// are skipped (logged). None: the chain is checked from the retained start at the first signature.
    pub async fn load(&mut self, store: &Store) -> Result<(), StoreError> {
        let (mut before, mut ignored, mut anchor) = (i64::MAX, 0usize, None);
        'pages: while ignored < ANCHOR_CANDIDATES {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM audit_signed_checkpoints WHERE key_id = $1 AND seq < $2 \
                 ORDER BY seq DESC LIMIT 100"
            ))
            .bind(self.key.id())
            .bind(before)
            .fetch_all(store.pool())
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let checkpoint = checkpoint_of(row)?;
                before = checkpoint.seq;
                if self.key.signed(&checkpoint) {
                    anchor = Some(checkpoint);
                    break 'pages;
                }
                ignored += 1;
            }
        }
        if ignored > 0 {
            tracing::warn!(ignored, key_id = %self.key.id(), "stored audit checkpoints of this key id do not verify with its key");
        }
        self.anchor = Some(anchor);
        Ok(())
    }

    /// Signs the head when it moved past the anchor and the records from the anchor's on still hash to it, and stores
    /// the checkpoint; `None` when nothing was appended since (or another replica signed the head with this key).
    pub async fn sign_head(&mut self, store: &Store) -> Result<Option<Checkpoint>, NotSigned> {
        self.sign_at(store, None).await
    }

    /// [`Signer::sign_head`], signing record `at` (a record the writer appended) instead of the head when it is past
    /// the anchor; the records are still walked up to the head.
    pub async fn sign_at(&mut self, store: &Store, at: Option<i64>) -> Result<Option<Checkpoint>, NotSigned> {
        if let Some(reason) = &self.refused {
            return Err(NotSigned::Refused(reason.clone()));
        }
        if self.anchor.is_none() {
            self.load(store).await?;
        }
        let anchor = self.anchor.as_ref().and_then(Option::as_ref);
        let followed = match anchor {
            // No checkpoint of this key yet (a first start, a new key): the head is taken as it stands, as the witness
            // then records it; walking a trail kept for years here would hold the writer, and strict requests with it.
            None => first_head(store, at).await.map_err(|e| super::chain::Broken::Unreadable(e.to_string())),
            Some(_) => super::chain::follow(store, anchor, at).await,
        };
        let (seq, hash) = match followed {
            Ok(head) => head,
            Err(super::chain::Broken::Unreadable(error)) => return Err(StoreError::Corrupt(error).into()),
            Err(broken) => {
                let reason = broken.to_string();
                self.refused = Some(reason.clone());
                return Err(NotSigned::Refused(reason));
            }
        };
        if seq == 0 || anchor.is_some_and(|anchor| anchor.seq >= seq) {
            return Ok(None);
        }
        // Signed by another replica with this key: the anchor moves to it. Only a row that verifies counts, so a row
        // written into the table by hand cannot stop the signing.
        let theirs = stored(store.pool(), seq - 1, seq).await?;
        if let Some(theirs) = theirs.into_iter().find(|c| c.hash == hash && self.key.signed(c)) {
            self.anchor = Some(Some(theirs));
            return Ok(None);
        }
        let checkpoint = self.key.sign(seq, &hash, crate::clock::unix_millis());
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
        self.anchor = Some(Some(checkpoint.clone()));
        Ok(Some(checkpoint))
    }
}

/// Record `at` as it stands (the head when there is no such record, or none is asked for).
async fn first_head(store: &Store, at: Option<i64>) -> Result<(i64, String), sqlx::Error> {
    if let Some(at) = at {
        let hash: Option<Vec<u8>> = sqlx::query_scalar("SELECT hash FROM audit_records WHERE seq = $1")
            .bind(at)
            .fetch_optional(store.pool())
            .await?;
        if let Some(hash) = hash {
            return Ok((at, hex::encode(hash)));
        }
    }
    sqlx::query_as::<_, (i64, String)>("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(store.pool()).await
}

fn checkpoint_of(row: &sqlx::any::AnyRow) -> Result<Checkpoint, StoreError> {
    Ok(Checkpoint {
        seq: row.try_get("seq")?,
        hash: row.try_get("hash")?,
        at: row.try_get("at")?,
        key_id: row.try_get("key_id")?,
        signature: row.try_get("signature")?,
    })
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
    rows.iter().map(checkpoint_of).collect()
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

    async fn append(store: &Store, records: usize) {
        let entries: Vec<crate::audit::Entry> = (0..records)
            .map(|i| crate::audit::Entry {
                at: crate::clock::unix_millis(),
                request_id: format!("req-{i}"),
                trace_id: None,
                caller: crate::audit::Caller { kind: "user".into(), id: "u".into(), issuer: String::new() },
                subjects: vec!["u".into()],
                fields: Vec::new(),
                operation_name: None,
                operation_type: "query".into(),
                document_hash: String::new(),
                purpose: None,
                cause: None,
            })
            .collect();
        let mut tx = store.begin_write().await.expect("a transaction");
        crate::audit::chain::append(store, &mut tx, &entries.iter().collect::<Vec<_>>()).await.expect("appended");
        tx.commit().await.expect("committed");
    }

    async fn signed_seq(signer: &mut Signer, store: &Store) -> Option<i64> {
        signer.sign_head(store).await.expect("signed").map(|c| c.seq)
    }

    #[tokio::test]
    async fn the_signer_follows_its_checkpoint_through_retention_and_a_restart_and_refuses_once_it_is_deleted() {
        let store = Store::connect(&crate::store::StoreSettings::memory()).await.expect("a store");
        store.migrate().await.expect("migrated");
        let mut signer = Signer::new(key("k1"));
        signer.load(&store).await.expect("loaded");
        assert_eq!(signed_seq(&mut signer, &store).await, None, "nothing to sign yet");
        append(&store, 3).await;
        assert_eq!(signed_seq(&mut signer, &store).await, Some(3));
        assert_eq!(signed_seq(&mut signer, &store).await, None, "nothing appended since");
        // Retention removes the checkpoint's record (and its row): the signer goes on from the retained start.
        append(&store, 2).await;
        crate::audit::chain::purge(&store, crate::audit::chain::Cutoff::KeepLast(1)).await.expect("purged");
        assert_eq!(signed_seq(&mut signer, &store).await, Some(6));
        // A restarted signer takes the newest stored checkpoint of its key, skipping one that does not verify.
        let forged = SigningKey::generate("k1").expect("a key").0.sign(6, "f".repeat(64).as_str(), 1);
        sqlx::query("UPDATE audit_signed_checkpoints SET signature = $1 WHERE seq = 6")
            .bind(&forged.signature)
            .execute(store.pool())
            .await
            .expect("forged");
        let mut restarted = Signer::new(key("k1"));
        restarted.load(&store).await.expect("loaded");
        assert_eq!(restarted.anchor, Some(None), "the forged row is no anchor");
        let mut restarted = Signer::new(key("k1"));
        sqlx::query("DELETE FROM audit_signed_checkpoints").execute(store.pool()).await.expect("deleted");
        append(&store, 1).await;
        assert_eq!(signed_seq(&mut restarted, &store).await, Some(7), "a first start takes the head as it stands");
        // The running signer's checkpoint (record 6) is gone: it refuses, and goes on refusing.
        append(&store, 1).await;
        for _ in 0..2 {
            match signer.sign_head(&store).await {
                Err(NotSigned::Refused(reason)) => assert!(reason.contains("(record 6) is gone"), "{reason}"),
                other => panic!("signed: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_row_written_into_the_checkpoints_by_hand_does_not_stop_the_signing() {
        let store = Store::connect(&crate::store::StoreSettings::memory()).await.expect("a store");
        store.migrate().await.expect("migrated");
        let mut signer = Signer::new(key("k1"));
        append(&store, 2).await;
        assert_eq!(signed_seq(&mut signer, &store).await, Some(2));
        sqlx::query(&format!("INSERT INTO audit_signed_checkpoints ({COLUMNS}) VALUES ($1, 'x', 0, 'x', 'x')"))
            .bind(i64::MAX)
            .execute(store.pool())
            .await
            .expect("a forged row");
        append(&store, 2).await;
        assert_eq!(signed_seq(&mut signer, &store).await, Some(4), "a row that does not verify is no one's checkpoint");
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
