//! SHA-256 as lowercase hex: persisted queries' hashes (Apollo's protocol), webhook bodies' digests, audit records'
//! chain.

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes.as_ref()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_digest_of_nothing_is_sha256_s_known_value() {
        assert_eq!(super::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
