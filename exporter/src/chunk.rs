//! The bytes of a feed: chunk files (`{"data": [...]}`, gzip) and the descriptor. Both are
//! pure functions of their input, so a rerun of a generation writes identical objects: the
//! gzip header carries no time nor file name, and the JSON's key order is fixed.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// A chunk file ready to upload.
pub struct Chunk {
    pub bytes: bytes::Bytes,
    pub sha256: String,
    pub records: u32,
}

/// `{"data": records}`, gzip-compressed, with its SHA-256 (of the compressed bytes, which is
/// what a consumer downloads).
pub fn encode(records: &[Json]) -> std::io::Result<Chunk> {
    // The default header has mtime 0 and no name: the same records give the same bytes.
    let mut gz = GzEncoder::new(Vec::with_capacity(16 * 1024), Compression::default());
    gz.write_all(b"{\"data\":[")?;
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            gz.write_all(b",")?;
        }
        serde_json::to_writer(&mut gz, record)?;
    }
    gz.write_all(b"]}")?;
    let bytes = gz.finish()?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(Chunk {
        bytes: bytes.into(),
        sha256,
        records: u32::try_from(records.len()).unwrap_or(u32::MAX),
    })
}

/// File name of chunk `seq` (1-based): `data-00001.json.gz`; the number sorts as text up
/// to 99,999 files and keeps growing past that.
pub fn file_name(seq: u32) -> String {
    format!("data-{seq:05}.json.gz")
}

/// One data file as the descriptor lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    pub file_name: String,
    pub records: u32,
    pub bytes: u64,
    pub sha256: String,
}

/// The descriptor, written after every data file it names (and read by consumers first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// Seconds since the epoch of the generation's snapshot (as the seed's feed).
    pub generation_timestamp: i64,
    /// The feed's kind (`reservewithgoogle.entity`, `eye.events`, `eye.plans`).
    pub name: String,
    /// The data files in order, relative to the descriptor's folder.
    pub data_file: Vec<String>,
    /// The same files with their record count, byte size and SHA-256.
    pub files: Vec<DataFile>,
    pub records: u64,
    /// The generation's folder name (UTC snapshot time).
    pub generation: String,
}

impl Descriptor {
    pub fn to_bytes(&self) -> bytes::Bytes {
        // Serializing a struct of strings and integers cannot fail.
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes.into()
    }
}

/// The top-level pointer, overwritten last: the newest complete generation of a feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latest {
    pub generation: String,
    pub generation_timestamp: i64,
    /// Key of the generation's descriptor, relative to the feed's folder.
    pub descriptor: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn same_records_same_bytes_and_they_decode() {
        let records = vec![serde_json::json!({"a": 1}), serde_json::json!({"b": [2]})];
        let one = encode(&records).expect("encode");
        let two = encode(&records).expect("encode");
        assert_eq!(one.bytes, two.bytes);
        assert_eq!(one.sha256, two.sha256);
        let mut text = String::new();
        flate2::read::GzDecoder::new(&one.bytes[..])
            .read_to_string(&mut text)
            .expect("gunzip");
        assert_eq!(text, r#"{"data":[{"a":1},{"b":[2]}]}"#);
        assert_eq!(file_name(7), "data-00007.json.gz");
    }
}
