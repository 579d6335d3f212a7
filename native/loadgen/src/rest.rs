//! Creating the pipeline to stream through, over the product's REST API (docs/rest.md: `POST /v1/pipelines`).
//! One blocking request before the run starts, so plain `std::net` does.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::args::split_url;

/// Stores the JSON document in `file` and returns the new pipeline's id.
pub fn create_pipeline(api: &str, file: &str, token: Option<&str>) -> Result<String, String> {
    let body = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    let (authority, _) = split_url(api, "http://")?;
    let mut stream = TcpStream::connect(&authority).map_err(|e| format!("{api}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /v1/pipelines HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n{auth}\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(&body))
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("{api}: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("POST /v1/pipelines: no response head")?;
    if !head.starts_with("HTTP/1.1 201") {
        return Err(format!(
            "POST /v1/pipelines: {}: {body}",
            head.lines().next().unwrap_or("")
        ));
    }
    let doc: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("POST /v1/pipelines: {e}"))?;
    doc["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "POST /v1/pipelines: no id in the answer".into())
}
